-- tests/e2e/plugins/http/widget.lua: the Widget plugin http_plugin.sh runs over 1,000
-- Widgets. Each reconcile asks the local server (tests/e2e/json_server.py, its address put
-- in place of @BASE_URL@ by the script) for the answer to its own name, size and color,
-- a yielding HTTP call, and writes it to status.answer; status.name is the name the
-- server says it answered for.
local http = require "ks.core.http"
local json = require "ks.core.json"

local tostring = tostring
local format = string.format

local BASE_URL = "@BASE_URL@"


local Widget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
}


local function escape(s)
  return (tostring(s):gsub("[^%w%-_.~]", function(c) return format("%%%02X", c:byte()) end))
end


function Widget.reconcile(obj)
  local spec = obj.spec or {}
  local url = BASE_URL .. "/answer?name=" .. escape(obj.metadata.name) .. "&size="
    .. escape(spec.size or 0) .. "&color=" .. escape(spec.color or "")
  local res, err = http.request { method = "GET", url = url, timeout = 30 }
  if not res then
    return nil, "could not ask the server: " .. tostring(err)
  end
  if res.status ~= 200 then
    return nil, "the server answered " .. tostring(res.status) .. ": " .. tostring(res.body)
  end
  local body, derr = json.decode(res.body)
  if not body then
    return nil, "could not decode the answer: " .. tostring(derr)
  end
  return { status = { answer = body.answer, name = body.name } }
end


return Widget
