-- tests/lua/shim/core.lua: stand-ins for the host modules ks.core.json, yaml, time and
-- log, so that the stdlib's unit specs run under plain busted. json is dkjson, yaml is
-- lyaml (nulls become json.null, as the host's YAML-to-JSON converter makes them), time is
-- a fake clock: sleep() is recorded and advances the clock, nothing is slept.
--
--   local shim = require "shim.core"   -- also puts tests/lua on package.path
--   shim.reset(); ...; assert.same({ 0.5 }, shim.sleeps)
local dkjson = require "dkjson"
local lyaml = require "lyaml"

local shim = { sleeps = {}, logs = {}, clock = { wall = 1795000000, mono = 1000 } }


local json = {}
-- The host's null is a light userdata (type "userdata", tostring an address that differs
-- from one process to the next); a userdata here too, so that a spec sees what code that
-- forgets it does in the host (dkjson's own null is a table, which hid such bugs).
json.null = newproxy()

local ARRAY = { __jsontype = "array" }

function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

-- v with json.null as dkjson's null (a copy where there is one; metatables kept).
local function to_dk(v)
  if v == json.null then return dkjson.null end
  if type(v) ~= "table" then return v end
  local out
  for k, x in pairs(v) do
    local y = to_dk(x)
    if y ~= x then
      out = out or setmetatable({}, getmetatable(v))
      out[k] = y
    end
  end
  if not out then return v end
  for k, x in pairs(v) do
    if out[k] == nil then out[k] = x end
  end
  return out
end

function json.encode(v)
  return dkjson.encode(to_dk(v))
end

function json.decode(s)
  if type(s) ~= "string" then
    return nil, "json: string expected"
  end
  local v, _, err = dkjson.decode(s, 1, json.null)
  if err then
    return nil, err
  end
  return v
end


local function nulls(v)
  if v == lyaml.null then
    return json.null
  end
  if type(v) == "table" then
    for k, x in pairs(v) do
      v[k] = nulls(x)
    end
  end
  return v
end

local yaml = {}

function yaml.decode(s)
  local ok, v = pcall(lyaml.load, s)
  if not ok then
    return nil, "yaml: " .. tostring(v)
  end
  return nulls(v)
end

function yaml.decode_all(s)
  local ok, v = pcall(lyaml.load, s, { all = true })
  if not ok then
    return nil, "yaml: " .. tostring(v)
  end
  return nulls(v)
end


local time = {}

function time.now()
  return shim.clock.wall
end

function time.monotonic()
  return shim.clock.mono
end

-- With shim.yield_on_sleep set, sleep() also yields (the host's sleep yields to the
-- loop), so that a spec can interleave coroutines as the host would.
function time.sleep(s)
  assert(type(s) == "number" and s >= 0, "time.sleep: seconds expected, got " .. tostring(s))
  shim.sleeps[#shim.sleeps + 1] = s
  shim.advance(s)
  if shim.yield_on_sleep then
    coroutine.yield("sleep")
  end
end


local log = {}
for _, level in ipairs { "debug", "info", "warn", "error" } do
  log[level] = function(msg, fields)
    shim.logs[#shim.logs + 1] = { level = level, msg = msg, fields = fields or {} }
  end
end


-- Move both clocks forward, as time passing would.
function shim.advance(s)
  shim.clock.wall = shim.clock.wall + s
  shim.clock.mono = shim.clock.mono + s
end


-- Forget the recorded sleeps and logs (the clock keeps going: tokens cached by earlier
-- tests belong to other transports and are never seen again).
function shim.reset()
  shim.sleeps = {}
  shim.logs = {}
  shim.yield_on_sleep = false
end


package.preload["ks.core.json"] = function() return json end
package.preload["ks.core.yaml"] = function() return yaml end
package.preload["ks.core.time"] = function() return time end
package.preload["ks.core.log"] = function() return log end
package.preload["ks.core.fault"] = function() return { point = function() end } end
shim.json, shim.yaml, shim.time, shim.log = json, yaml, time, log

return shim
