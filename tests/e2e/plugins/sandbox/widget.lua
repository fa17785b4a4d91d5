-- tests/e2e/plugins/sandbox/widget.lua: a Widget plugin that tries, as spec.color says,
-- to leave the sandbox or to break its limits (plugins.sh). An attempt that works
-- writes status.escaped; one the sandbox stops fails the reconcile with the reason.
local time = require "ks.core.time"


local attempts = {}


function attempts.io()
  local f = io.open("/etc/hostname")
  return f ~= nil
end


function attempts.execute(obj)
  os.execute("touch " .. obj.spec.blob)
  return true
end


function attempts.exit()
  os.exit(3)
  return true
end


function attempts.ffi()
  local ffi = require "ffi"
  return ffi ~= nil
end


function attempts.debug()
  return debug.getinfo(1) ~= nil
end


function attempts.loadstring()
  local f = loadstring(string.dump(function() return 1 end))
  return f ~= nil
end


function attempts.loadbin()
  local f, err = load(string.dump(function() return 1 end))
  if not f then
    error("load refused the bytecode: " .. tostring(err))
  end
  return true
end


function attempts.global()
  e2e_global = 1 -- luacheck: ignore
  return true
end


function attempts.stringlib()
  string.upper = nil -- luacheck: ignore
  return true
end


-- print goes to the host's log (level info), never to its stdout.
function attempts.print()
  print("e2e: a plugin printing on the host's stdout")
  return true
end


function attempts.loop()
  while true do end
end


function attempts.hog()
  local keep = {}
  for i = 1, 1e9 do
    keep[i] = string.rep("hog" .. i, 2 ^ 18)
  end
  return #keep > 0
end


-- About 24 MiB kept: over a 16 MiB cap, under the 64 MiB default.
function attempts.hog24()
  local keep = {}
  for i = 1, 24 do
    keep[i] = string.rep(string.char(64 + i), 2 ^ 20)
  end
  return #keep == 24
end


function attempts.sleep5()
  time.sleep(5)
  return true
end


local Widget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  limits = { instructions = 1e6, memory_mb = 16, seconds = 1 },
}


-- Keeps 8 MiB: within every cap, once the memory a failed hog left is given back.
local function keep8()
  local keep = {}
  for i = 1, 8 do
    keep[i] = string.rep(string.char(96 + i), 2 ^ 20)
  end
  return #keep
end


function Widget.reconcile(obj)
  local color = obj.spec.color or "none"
  local try = attempts[color]
  local status = { plugin = "sandbox", color = color }
  if color == "keep8" then
    status.kept = keep8()
  end
  if try and try(obj) then
    status.escaped = color
  end
  return {
    status = status,
    conditions = {
      { type = "Available", status = "True", reason = "E2EReady", message = "color " .. color },
      { type = "Progressing", status = "False", reason = "Reconciled", message = "up to date" },
    },
  }
end


return Widget
