-- Unit tests of ks.openstack.auth: the token request body, Keystone's times, the renewal
-- time, and one token request for coroutines that need the same token at once. The token
-- responses are real (captured); the transport is scripted.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local fake = require "shim.fake_transport"
local C = require "shim.cloud"
local R = require "fixtures.responses"
local json = require "ks.core.json"
local auth = require "ks.openstack.auth"


describe("ks.openstack.auth", function()
  before_each(shim.reset)

  it("builds a password body by user id, without a domain", function()
    local cfg = { method = "password", user = { id = "u1" }, password = "p" }
    assert.same({ auth = { identity = { methods = { "password" },
      password = { user = { id = "u1", password = "p" } } },
      scope = { project = { id = "p1" } } } }, auth.body(cfg, { project = { id = "p1" } }))
  end)

  it("never sends a scope with an application credential", function()
    local cfg = { method = "application_credential", appcred = { id = "a", secret = "s" } }
    assert.same({ auth = { identity = { methods = { "application_credential" },
      application_credential = { id = "a", secret = "s" } } } },
      auth.body(cfg, { project = { id = "p1" } }))
  end)

  it("reads Keystone's times, with Z or an offset", function()
    assert.equal(1795620868, auth.parse_time("2026-11-25T15:34:28.000000Z"))
    assert.equal(1795620868, auth.parse_time("2026-11-25T17:34:28+02:00"))
    assert.is_nil(auth.parse_time("tomorrow"))
  end)

  it("keeps what a request needs from the real token, renewing 120 s before expiry", function()
    local doc = json.decode(R.keystone_token_created.body)
    local e = auth.entry("tok", doc, 1000, 0)
    assert.same({ "tok", C.token.project.id, "demo", C.token.user.id },
      { e.token, e.project_id, e.project_name, e.user_id })
    assert.equal(1000 + 86400 - 120, e.renew_at)
    assert.equal(6, #e.catalog)
    table.sort(e.roles)
    assert.same({ "member", "reader" }, e.roles)
  end)

  it("renews a short-lived token a quarter of its life early", function()
    local doc = { token = { issued_at = "2026-01-01T00:00:00Z", expires_at = "2026-01-01T00:04:00Z" } }
    assert.equal(10 + 240 - 60, auth.entry("t", doc, 10, 0).renew_at)
  end)

  it("keys scopes by project id, or by name and domain", function()
    assert.equal("project:p1", auth.scope_key({ project = { id = "p1" } }))
    assert.equal("project:/Default/demo", auth.scope_key({ project = { name = "demo",
      domain = { name = "Default" } } }))
    assert.equal("unscoped", auth.scope_key(nil))
  end)

  it("asks Keystone once when two coroutines need the token at the same time", function()
    local ok = fake.response(200, { ok = true })
    local token = { "POST", "/auth/tokens$", R.keystone_token_created, yield = true }
    local cloud, t = C.connect { token, { "GET", "", ok }, { "GET", "", ok } }
    shim.yield_on_sleep = true
    local results = {}
    local a = coroutine.create(function() results.a = cloud:request("compute", "GET", "/servers") end)
    local b = coroutine.create(function() results.b = cloud:request("compute", "GET", "/flavors") end)
    assert(coroutine.resume(a))          -- a asks for the token; the answer is on its way
    assert(coroutine.resume(b))          -- b waits for a's token
    assert(coroutine.resume(a))          -- the token arrives; a's GET
    assert(coroutine.resume(b))          -- b wakes up and uses it
    assert.same({ "dead", "dead" }, { coroutine.status(a), coroutine.status(b) })
    assert.same({ { ok = true }, { ok = true } }, { results.a, results.b })
    assert.is_true(t.done())
    assert.equal(1, cloud.stats.auth)
  end)
end)
