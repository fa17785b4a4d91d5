-- tests/e2e/plugins/hostile/widget.lua: a well-behaved Widget plugin, loaded next to the
-- hostile Gadget (tests/e2e/sandbox.sh): it must keep reconciling while the Gadget attacks.
-- It is tests/e2e/plugins/host/widget.lua (spec.color picks what a reconcile does).
local time = require "ks.core.time"


local Widget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  finalizer = "test.kupenstack.io/e2e",
}


local function color_of(obj)
  return (obj.spec and obj.spec.color) or "none"
end


function Widget.reconcile(obj, ctx)
  local color = color_of(obj)
  ctx.log.info("e2e reconcile", { color = color, generation = obj.metadata.generation })
  if color == "fail" then
    return nil, "boom: e2e transient failure"
  elseif color == "terminal" then
    ctx.terminal("e2e: the color terminal is not allowed", "InvalidConfiguration")
  elseif color == "slow" then
    ctx.log.info("e2e slow start")
    time.sleep(3)
    ctx.log.info("e2e slow end")
  end
  ctx.event("Normal", "E2EReconciled", "the e2e plugin saw " .. color)
  local up = color ~= "off"
  return {
    status = { phase = "Seen", size = obj.spec.size or 0, color = color },
    conditions = {
      { type = "Available", status = up and "True" or "False",
        reason = up and "E2EReady" or "E2EOff", message = "color " .. color },
      { type = "Progressing", status = "False", reason = "Reconciled", message = "up to date" },
    },
  }
end


function Widget.finalize(obj, ctx)
  local color = color_of(obj)
  ctx.log.info("e2e finalize", { color = color })
  if color == "stuck" then
    return nil, "e2e: cannot let go yet"
  end
  return {}
end


return Widget
