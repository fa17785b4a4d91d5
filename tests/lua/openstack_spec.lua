-- Unit tests of ks.openstack on a scripted transport: authentication and token caching,
-- scoping, catalog and URL building, headers, decoding, pagination, wait_for and
-- microversions. The responses are real ones of tests/env/openstack (captured by
-- tests/lua/fixtures/capture.py) unless a test builds one to make a point; the live
-- counterpart is tests/lua/openstack_live.lua.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local fake = require "shim.fake_transport"
local C = require "shim.cloud"
local R = require "fixtures.responses"
local json = require "ks.core.json"
local openstack = require "ks.openstack"

local TOKEN = C.TOKEN
local TOKEN_ID = R.keystone_token_created.headers["x-subject-token"]
local OK = fake.response(200, { ok = true })


local function sent_body(call)
  return json.decode(call.body)
end


describe("ks.openstack", function()
  before_each(shim.reset)

  describe("authentication", function()
    it("does no I/O in connect; the first request gets a password token scoped by name", function()
      local cloud, t = C.connect { TOKEN, { "GET", "/servers/s1$", OK } }
      assert.equal("test", cloud.name)
      assert(cloud:request("compute", "GET", "/servers/s1"))
      local auth = sent_body(t.calls[1])
      assert.same({ auth = {
        identity = { methods = { "password" }, password = { user = {
          name = "demo", domain = { name = "Default" }, password = "kupenstack" } } },
        scope = { project = { name = "demo", domain = { name = "Default" } } },
      } }, auth)
      assert.equal(C.auth_url .. "/auth/tokens", t.calls[1].url)
      assert.equal(TOKEN_ID, t.calls[2].headers["X-Auth-Token"])
      assert.equal(C.url.compute .. "/servers/s1", t.calls[2].url)
    end)

    it("reuses the token and counts every call", function()
      local cloud = C.connect { TOKEN, { "GET", "", OK }, { "GET", "", OK }, { "GET", "", OK } }
      for _ = 1, 3 do
        assert(cloud:request("network", "GET", "/networks"))
      end
      assert.same({ requests = 4, by_service = { identity = 1, network = 3 }, retries = 0,
        auth = 1, reauth = 0 }, cloud.stats)
    end)

    it("renews the token shortly before it expires (the real one lives a day)", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", OK }, { "GET", "", OK }, TOKEN, { "GET", "", OK } }
      assert(cloud:request("network", "GET", "/networks"))
      shim.advance(86400 - 121)
      assert(cloud:request("network", "GET", "/networks"))
      assert.equal(3, #t.calls)
      shim.advance(2)
      assert(cloud:request("network", "GET", "/networks"))
      assert.equal("POST", t.calls[4].method)
      assert.equal(2, cloud.stats.auth)
    end)

    it("gets a new token once on a 401 and tries again", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", R.nova_unauthorized }, TOKEN, { "GET", "", OK } }
      local body = assert(cloud:request("compute", "GET", "/servers"))
      assert.same({ ok = true }, body)
      assert.is_true(t.done())
      assert.same({ 2, 1 }, { cloud.stats.auth, cloud.stats.reauth })
    end)

    it("returns the second 401 rather than asking again", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.nova_unauthorized }, TOKEN,
        { "GET", "", R.nova_unauthorized } }
      local body, err = cloud:request("compute", "GET", "/servers")
      assert.is_nil(body)
      assert.same({ 401, "unauthorized", false }, { err.status, err.kind, err.retryable })
    end)

    it("explains the real 401 of a wrong password", function()
      local cloud = C.connect { { "POST", "/auth/tokens$", R.keystone_token_wrong_password } }
      local _, err = cloud:request("compute", "GET", "/servers")
      assert.same({ 401, "unauthorized", "identity" }, { err.status, err.kind, err.service })
      assert.equal("identity POST /v3/auth/tokens: 401 Unauthorized: The request you have made "
        .. "requires authentication. (password authentication as user 'demo' in domain 'Default' "
        .. "of cloud 'test' at " .. C.auth_url .. ": check the username, password, project and "
        .. "domains)", tostring(err))
    end)

    it("authenticates with an application credential, unscoped, and refuses to rescope it", function()
      local cloud, t = C.connect({ { "POST", "/auth/tokens$", R.keystone_token_appcred },
        { "GET", "", OK } }, { cloud = "appcred" })
      assert(cloud:request("compute", "GET", "/flavors"))
      assert.same({ auth = { identity = { methods = { "application_credential" },
        application_credential = { id = "e0a94ad30af14ac4ba405072b022f59e", secret = "s3cret" } } } },
        sent_body(t.calls[1]))
      local scoped, err = cloud:scoped("p2")
      assert.is_nil(scoped)
      assert.truthy(err.message:find("bound to its project", 1, true))
    end)

    it("shares tokens between handles of the same credentials, not their counters", function()
      local t = fake.new { TOKEN, { "GET", "", OK }, { "GET", "", OK } }
      local o = { clouds_yaml = C.clouds_yaml(), cloud = "test", transport = t.transport, rate = false }
      local a, b = openstack.connect(o), openstack.connect(o)
      assert(a:request("image", "GET", "/images"))
      assert(b:request("image", "GET", "/images"))
      assert.same({ 2, 1 }, { a.stats.requests, b.stats.requests })
    end)

    it("reports a Keystone answer without X-Subject-Token", function()
      local r = { status = 201, headers = {}, body = R.keystone_token_created.body }
      local cloud = C.connect { { "POST", "", r } }
      local _, err = cloud:request("compute", "GET", "/servers")
      assert.equal("bad_token_response", err.code)
    end)

    it("tells the project the token is scoped to", function()
      local cloud = C.connect { TOKEN }
      assert.equal(C.token.project.id, cloud:project_id())
    end)
  end)

  describe("scoped", function()
    it("gets a token scoped to the project, sharing the counters", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", OK }, TOKEN, { "GET", "", OK }, { "GET", "", OK } }
      assert(cloud:request("network", "GET", "/networks"))
      local p = cloud:scoped("0123456789abcdef0123456789abcdef")
      assert(p:request("network", "GET", "/networks"))
      assert(cloud:request("network", "GET", "/networks"))  -- its own token still good
      assert.same({ project = { id = "0123456789abcdef0123456789abcdef" } }, sent_body(t.calls[3]).auth.scope)
      assert.equal(5, cloud.stats.requests)
      assert.equal(cloud.stats, p.stats)
    end)

    it("takes project_id from connect as the scope", function()
      local cloud, t = C.connect({ TOKEN }, { project_id = "p9" })
      assert(cloud:auth())
      assert.same({ project = { id = "p9" } }, sent_body(t.calls[1]).auth.scope)
    end)
  end)

  describe("request", function()
    it("joins each service's path to its endpoint the way that service wants", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", OK }, { "GET", "", OK }, { "GET", "", OK },
        { "GET", "", OK }, { "GET", "", OK }, { "GET", "", OK } }
      for _, c in ipairs { { "compute", "/servers" }, { "network", "/networks" }, { "image", "/images" },
        { "volumev3", "/volumes" }, { "identity", "/projects" }, { "placement", "/resource_providers" } } do
        assert(cloud:request(c[1], "GET", c[2]))
      end
      local urls = {}
      for i = 2, 7 do
        urls[#urls + 1] = t.calls[i].url
      end
      assert.same({ C.url.compute .. "/servers", C.url.network .. "/v2.0/networks",
        C.url.image .. "/v2/images", C.url.volumev3 .. "/volumes", C.url.identity .. "/projects",
        C.url.placement .. "/resource_providers" }, urls)
    end)

    it("sets the microversion headers, Nova's legacy one too", function()
      local cloud, t = C.connect({ TOKEN, { "GET", "", OK }, { "GET", "", OK }, { "GET", "", OK } },
        { microversions = { ["block-storage"] = "3.60" } })
      assert(cloud:request("compute", "GET", "/servers", { microversion = "2.79" }))
      assert(cloud:request("volumev3", "GET", "/volumes"))
      assert(cloud:request("network", "GET", "/networks"))
      assert.same({ "compute 2.79", "2.79" }, { t.calls[2].headers["OpenStack-API-Version"],
        t.calls[2].headers["X-OpenStack-Nova-API-Version"] })
      assert.equal("volume 3.60", t.calls[3].headers["OpenStack-API-Version"])
      assert.is_nil(t.calls[4].headers["OpenStack-API-Version"])
    end)

    it("sends a table body as JSON and a string as is, with the caller's headers", function()
      local cloud, t = C.connect { TOKEN, { "POST", "", fake.response(201, { network = { id = "n1" } }) },
        { "PUT", "", fake.response(204, "") } }
      local body, res = cloud:request("network", "POST", "/networks", { body = { network = { name = "a" } } })
      assert.same({ { network = { id = "n1" } }, 201 }, { body, res.status })
      assert.same({ network = { name = "a" } }, sent_body(t.calls[2]))
      assert.equal("application/json", t.calls[2].headers["Content-Type"])
      body = assert(cloud:request("image", "PUT", "/images/i1/file", { body = "\0\1",
        headers = { ["content-type"] = "application/octet-stream" } }))
      assert.same({}, body)
      assert.equal("\0\1", t.calls[3].body)
      assert.is_nil(t.calls[3].headers["Content-Type"])
      assert.equal("application/octet-stream", t.calls[3].headers["content-type"])
    end)

    it("encodes the query, lists as repeated keys", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", OK } }
      assert(cloud:request("network", "GET", "/networks", { query = { name = "a b/c", tags = { "x", "y" } } }))
      assert.equal(C.url.network .. "/v2.0/networks?name=a%20b%2Fc&tags=x&tags=y", t.calls[2].url)
    end)

    it("returns the raw body when asked", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.glance_unknown_route_text } }
      local _, err = cloud:request("image", "GET", "/bogus", { raw = true })
      assert.equal("not_found", err.kind)
      cloud = C.connect { TOKEN, { "GET", "", { status = 200, headers = {}, body = "bytes" } } }
      assert.equal("bytes", cloud:request("image", "GET", "/images/i/file", { raw = true }))
    end)

    it("returns the real 404 with its fields, and is_not_found says so", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.nova_server_not_found } }
      local body, err = cloud:request("compute", "GET", "/servers/x?detail=1")
      assert.is_nil(body)
      assert.same({ 404, "compute", "GET", "/servers/x", "itemNotFound", "not_found", false },
        { err.status, err.service, err.method, err.path, err.code, err.kind, err.retryable })
      assert.equal(C.url.compute .. "/servers/x?detail=1", err.url)
      assert.is_true(openstack.is_not_found(err))
      assert.is_false(openstack.is_not_found("a string"))
    end)

    it("says which services the catalog has when one is missing", function()
      local cloud = C.connect { TOKEN }
      local _, err = cloud:request("dns", "GET", "/zones")
      assert.same({ "invalid", "no_endpoint" }, { err.kind, err.code })
      assert.truthy(err.message:find("no endpoint for dns (public, region RegionOne)", 1, true))
    end)

    it("passes the timeout and the CA file to the transport", function()
      local cloud, t = C.connect({ TOKEN, { "GET", "", OK } }, {
        clouds_yaml = C.clouds_yaml("    cacert: /etc/ssl/cloud-ca.pem"), timeout = 5 })
      assert(cloud:request("compute", "GET", "/servers", { timeout = 2 }))
      assert.same({ "/etc/ssl/cloud-ca.pem", 5, 2 }, { t.calls[1].ca_file, t.calls[1].timeout,
        t.calls[2].timeout })
    end)

    it("raises on a caller mistake", function()
      local cloud = C.connect {}
      assert.has_error(function() cloud:request("compute", nil, "/x") end)
      assert.has_error(function() openstack.connect("text") end)
    end)
  end)

  describe("list", function()
    local function pages(prefix, n)
      local script = { TOKEN }
      for i = 1, n do
        script[#script + 1] = { "GET", "", R[prefix .. "_page" .. i] }
      end
      return script
    end

    it("follows Nova's flavors_links to the empty last page", function()
      local cloud, t = C.connect(pages("nova_flavors", 4))
      local items = assert(cloud:list("compute", "/flavors", "flavors", { limit = 1 }))
      assert.equal(3, #items)
      assert.equal("m1.tiny", items[1].name)
      assert.equal(C.url.compute .. "/flavors?limit=1", t.calls[2].url)
      assert.equal(C.url.compute .. "/flavors?limit=1&marker=1", t.calls[3].url)
      assert.is_true(t.done())
    end)

    it("follows Neutron's networks_links until only 'previous' is left", function()
      local cloud, t = C.connect(pages("neutron_networks", 4))
      local items = assert(cloud:list("network", "/networks", "networks", { limit = 1 }))
      assert.equal(3, #items)
      assert.is_true(t.done())
    end)

    it("follows Glance's relative next", function()
      local cloud, t = C.connect(pages("glance_images", 3))
      local items = assert(cloud:list("image", "/images", "images", { query = { limit = 1 } }))
      assert.equal(2, #items)
      assert.truthy(t.calls[3].url:find("^" .. C.url.image:gsub("%p", "%%%0") .. "/v2/images%?limit=1&marker="))
    end)

    it("returns an error from any page", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.nova_flavors_page1 }, { "GET", "", R.nova_forbidden } }
      local items, err = cloud:list("compute", "/flavors", "flavors")
      assert.is_nil(items)
      assert.equal("forbidden", err.kind)
    end)

    it("reports a response without the collection", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.nova_flavors_page1 } }
      local _, err = cloud:list("compute", "/flavors", "servers")
      assert.equal("the response has no 'servers' list", err.message)
    end)
  end)

  describe("wait_for", function()
    it("polls until the function returns a value", function()
      local n = 0
      local v = openstack.wait_for(function()
        n = n + 1
        if n < 4 then
          return nil, "BUILD"
        end
        return "ACTIVE"
      end, { interval = 1.5 })
      assert.same({ "ACTIVE", { 1.5, 1.5, 1.5 } }, { v, shim.sleeps })
    end)

    it("stops at an error that is not retryable", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.nova_server_not_found } }
      local v, err = cloud:wait_for(function()
        return cloud:request("compute", "GET", "/servers/x")
      end)
      assert.is_nil(v)
      assert.equal("not_found", err.kind)
      assert.same({}, shim.sleeps)
    end)

    it("times out with the last reason", function()
      local v, err = openstack.wait_for(function() return false, "status BUILD" end,
        { timeout = 10, interval = 4, what = "server s1 ACTIVE" })
      assert.is_nil(v)
      assert.same({ 4, 4, 2 }, shim.sleeps)
      assert.same({ "transient", true, "timeout" }, { err.kind, err.retryable, err.code })
      assert.equal("timed out after 10 s waiting for server s1 ACTIVE: status BUILD", err.message)
    end)
  end)

  describe("microversions", function()
    it("reads Nova's range from its real version document, once", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", R.nova_versions } }
      assert.same({ min = "2.1", max = "2.93" }, cloud:versions("compute"))
      assert.equal("2.79", cloud:microversion("compute", "2.79"))
      assert.equal("2.93", cloud:microversion("compute"))
      assert.equal(C.url.compute:gsub("/v2%.1$", "") .. "/", t.calls[2].url)
      local mv, err = cloud:microversion("compute", "2.99")
      assert.is_nil(mv)
      assert.equal("compute does not support microversion 2.99 (it supports 2.1 to 2.93)", err.message)
      assert.equal(2, #t.calls)
    end)

    it("reads Cinder's range from its real 300 Multiple Choices", function()
      local cloud = C.connect { TOKEN, { "GET", "", R.cinder_versions } }
      assert.same({ min = "3.0", max = "3.70" }, cloud:versions("volumev3"))
      assert.equal("3.60", cloud:microversion("block-storage", "3.60"))
    end)

    it("reads Placement's range (max_version) at its unversioned endpoint", function()
      local cloud, t = C.connect { TOKEN, { "GET", "", R.placement_versions } }
      assert.same({ min = "1.0", max = "1.39" }, cloud:versions("placement"))
      assert.equal(C.url.placement .. "/", t.calls[2].url)
    end)

    it("has no range for a service without microversions", function()
      local cloud = C.connect { TOKEN, { "GET", "", fake.response(200, { versions = {
        { id = "v2.0", status = "CURRENT", links = {} } } }) } }
      assert.same({}, cloud:versions("network"))
      local _, err = cloud:microversion("network", "2.1")
      assert.equal("network does not support microversion 2.1 (it supports none)", err.message)
    end)
  end)

  it("keeps each handle's endpoint override though handles share a token", function()
    local t = fake.new { TOKEN, { "GET", "^" .. C.url.compute:gsub("%p", "%%%0"), OK },
      { "GET", "^http://override:8774/v2%.1/servers$", OK } }
    local function conn(extra)
      return openstack.connect { clouds_yaml = C.clouds_yaml(extra), cloud = "test",
        transport = t.transport, rate = false }
    end
    assert(conn():request("compute", "GET", "/servers"))
    assert(conn("    compute_endpoint_override: http://override:8774/v2.1"):request("compute", "GET", "/servers"))
    assert.is_true(t.done())
  end)

  it("logs a 401 that gets a new token quietly, a final one loudly", function()
    local cloud = C.connect { TOKEN, { "GET", "", R.nova_unauthorized }, TOKEN, { "GET", "", R.nova_unauthorized } }
    cloud:request("compute", "GET", "/servers")
    local levels = {}
    for _, l in ipairs(shim.logs) do
      levels[#levels + 1] = l.level .. " " .. l.fields.status
    end
    assert.same({ "debug 401", "warn 401" }, levels)
  end)
end)
