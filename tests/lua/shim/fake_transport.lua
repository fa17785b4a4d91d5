-- tests/lua/shim/fake_transport.lua: a scripted stand-in for ks.core.http.request, for
-- unit specs only (the live script tests/lua/openstack_live.lua talks to the real
-- services). Each step answers one request, in order, and checks it:
--
--   local t = fake.new {
--     { "POST", "/v3/auth/tokens$", R.keystone_token_created },   -- a captured response
--     { "GET", "/servers/x$", { status = 503, headers = {}, body = "" } },
--     { "GET", "/servers/x$", fail = { code = 0, reason = "ECONNRESET", message = "..." } },
--     { "GET", "/servers/x$", OK, yield = true },   -- yields before answering
--   }
--   openstack.connect { ..., transport = t.transport }; ...; assert.equal(3, #t.calls)
local fake = {}


local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do
    c[k] = v
  end
  return c
end


function fake.new(script)
  local t = { calls = {}, script = script }
  function t.transport(req)
    assert(type(req) == "table" and type(req.url) == "string", "transport: request table expected")
    t.calls[#t.calls + 1] = req
    local step = script[#t.calls]
    local what = tostring(req.method) .. " " .. req.url
    if not step then
      error("fake transport: unexpected request #" .. #t.calls .. ": " .. what, 0)
    end
    if step[1] ~= req.method or not req.url:find(step[2]) then
      error("fake transport: request #" .. #t.calls .. " was " .. what .. ", expected "
        .. step[1] .. " " .. step[2], 0)
    end
    if step.yield then  -- the answer takes a while: let other coroutines run
      coroutine.yield("transport")
    end
    if step.fail then
      return nil, step.fail
    end
    local r = step[3]
    return { status = r.status, headers = copy(r.headers), body = r.body }
  end
  -- Every step was used.
  function t.done()
    return #t.calls == #script
  end
  return t
end


-- A response built in a spec (status, headers, JSON-encodable or string body).
function fake.response(status, body, headers)
  if type(body) == "table" then
    body = require("ks.core.json").encode(body)
  end
  return { status = status, headers = headers or { ["content-type"] = "application/json" },
    body = body or "" }
end


return fake
