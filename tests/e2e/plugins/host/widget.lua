-- tests/e2e/plugins/host/widget.lua: the Widget plugin host.sh drives. What a reconcile
-- does is chosen by spec.color: "fail" fails (retried), "terminal" fails for good,
-- "slow" sleeps 3 s, "off" reports Available=False, "stale" plays another writer of the
-- status between the host's read and its write (status.n 100 when it read none); the
-- plugin reports status.n 1 when it read none, 101 when it read 100, else what it read;
-- "count" adds 1 to the status.n it read, logs what it read ("e2e count") and asks to be
-- called again at once (requeue_after 0.001 s) until n is 20; finalize fails while the
-- color is "stuck".
-- Every call logs a line ("e2e reconcile", "e2e finalize") that the script counts.
local time = require "ks.core.time"
local kube = require "ks.core.kube"


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
  local n = obj.status and obj.status.n
  if color == "stale" and not n then
    local _, err = kube.patch({ group = "test.kupenstack.io", version = "v1", kind = "Widget" },
      obj.metadata.namespace, obj.metadata.name, { status = { n = 100 } },
      { type = "merge", subresource = "status" })
    if err then
      return nil, "e2e: the other writer's patch failed: " .. tostring(err)
    end
  end
  ctx.event("Normal", "E2EReconciled", "the e2e plugin saw " .. color)
  if color == "count" then
    ctx.log.info("e2e count", { n = n or 0 })
    return { status = { color = color, n = (n or 0) + 1 },
             requeue_after = (n or 0) + 1 < 20 and 0.001 or nil }
  end
  local up = color ~= "off"
  return {
    status = { phase = "Seen", size = obj.spec.size or 0, color = color,
               n = color == "stale" and (n == nil and 1 or n == 100 and 101 or n) or nil },
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
