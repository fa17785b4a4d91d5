-- tests/e2e/plugins/hostile/gadget.lua: a hostile Gadget plugin for tests/e2e/sandbox.sh.
-- spec.color picks the attack; each would freeze the host's loop if the sandbox let it:
--   "pcall"   an endless loop inside five levels of pcall, each restarting the one below
--   "xpcall"  an endless loop under xpcall whose handler loops too
--   "pattern" a backtracking pattern (exponential in C, where no hook fires)
--   "rep"     string.rep of 1 GiB
--   "freeze"  ks.core.fault.point("e2e-freeze"): blocks the loop in C when the host was
--             started with KUPENSTACK_FREEZE_AT=e2e-freeze (the watchdog's test)
-- Anything else reconciles normally. Every call logs "e2e hostile" with the color.
local fault = require "ks.core.fault"


local Gadget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gadget",
  limits = { memory_mb = 4096, instructions = 1e12, seconds = 86400 },
}


local function spin()
  while true do end
end


local function nest(n)
  if n == 0 then
    spin()
  end
  while true do
    pcall(nest, n - 1)
  end
end


local attacks = {
  pcall = function() nest(5) end,
  xpcall = function()
    while true do
      xpcall(spin, spin)
    end
  end,
  pattern = function()
    return string.rep("a", 30):find(string.rep("a*", 30) .. "b")
  end,
  rep = function()
    return #string.rep("x", 2 ^ 30)
  end,
  freeze = function()
    fault.point(nil, "e2e-freeze")
  end,
}


function Gadget.reconcile(obj, ctx)
  local color = (obj.spec and obj.spec.color) or "none"
  ctx.log.info("e2e hostile", { color = color })
  if attacks[color] then
    attacks[color]()
  end
  return {
    status = { color = color },
    conditions = {
      { type = "Available", status = "True", reason = "E2EReady", message = "color " .. color },
    },
  }
end


return Gadget
