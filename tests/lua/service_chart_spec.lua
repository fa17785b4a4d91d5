-- Unit tests of a service's chart (ks.service.chart: the string form, a chart of the charts
-- directory pinned by digest, a repository chart that must be pinned, paths confined to the
-- charts directory, the ControlPlane's inheritance), its region (into the charts'
-- endpoints.identity.auth.*.region_name and the health check's catalog region) and the
-- deletion of a service whose namespace lacks the kupenstack-services binding.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
package.preload["ks.core.kube"] = function() return {} end
package.preload["ks.release"] = function() return {} end -- the engine: not under test here

local service, chart

local NOVA = { kind = "Nova", chart = "nova", components = { "api" }, jobs = { "db_sync" },
               auth = { "admin", "nova", "placement" } }
local SHA = "sha256:" .. string.rep("ab", 32)


describe("ks.service.chart", function()
  before_each(function()
    shim.reset()
    package.loaded["ks.service"] = nil
    service = require "ks.service"
    chart = require "ks.service.chart"
  end)

  it("keeps the string form: a chart of the charts directory, the kind's own by default", function()
    assert.same({ chart = "/c/nova" }, chart.source(nil, "nova", "/c"))
    assert.same({ chart = "/c/nova-0.1.0.tgz" }, chart.source("nova-0.1.0.tgz", "nova", "/c"))
    assert.same({ chart = "/c/osh/nova" }, chart.source("osh/nova", "nova", "/c"))
  end)

  it("confines a chart's name to the charts directory", function()
    for _, bad in ipairs({ "../etc", "/etc/passwd", "a/../../b", ".hidden", "a//b", "a/", "" }) do
      local s, err = chart.source(bad, "nova", "/c")
      assert.is_nil(s, bad)
      assert.matches("spec.chart must name a chart of the operator's charts directory", err, 1, true)
      s, err = chart.source({ name = bad ~= "" and bad or "." }, "nova", "/c")
      assert.is_nil(s, bad)
      assert.matches("spec.chart.name", err, 1, true)
    end
  end)

  it("takes a chart of the charts directory pinned by its content digest", function()
    assert.same({ chart = "/c/nova.tgz", digest = SHA },
                chart.source({ name = "nova.tgz", digest = SHA }, "nova", "/c"))
    local s, err = chart.source({ name = "nova.tgz", digest = "0123456789abcdef" }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.digest must be sha256:<64 hex digits> (status.chartDigest)", err, 1, true)
    s, err = chart.source({ version = "0.1.0" }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.version: only a chart of a repository has a version", err, 1, true)
  end)

  it("takes a repository chart only pinned by sha256 digest", function()
    local repo = "http://127.0.0.1:8000/charts"
    assert.same({ repo = repo, chart = "nova", version = "0.1.0", digest = SHA },
                chart.source({ repository = repo, version = "0.1.0", digest = SHA }, "nova", "/c"))
    local s, err = chart.source({ repository = repo, version = "0.1.0" }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.digest: a chart from a repository must be pinned", err, 1, true)
    s, err = chart.source({ repository = repo, version = "0.1.0", digest = "sha256:12" }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.digest must be sha256:<64 hex digits>", err, 1, true)
    s, err = chart.source({ repository = repo, digest = SHA }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.version: a chart from a repository needs its version", err, 1, true)
    s, err = chart.source({ repository = "file:///etc", version = "1", digest = SHA }, "nova", "/c")
    assert.is_nil(s)
    assert.matches("spec.chart.repository must be the http(s) URL", err, 1, true)
    s, err = chart.source({ repository = repo, version = "1", digest = SHA, tag = "x" }, "nova", "/c",
                          "spec.services.nova.chart")
    assert.is_nil(s)
    assert.matches("spec.services.nova.chart.tag: unknown field", err, 1, true)
  end)

  it("is checked with the rest of the spec, naming the field", function()
    assert.matches("spec.chart.digest", service.check(NOVA, { version = "2024.1",
      chart = { repository = "https://c.example/", version = "1" } }, service.RELEASES), 1, true)
    assert.is_nil(service.check(NOVA, { version = "2024.1", chart = "nova" }, service.RELEASES))
  end)

  it("inherits a ControlPlane's repository and version, the service's own winning", function()
    local shared = { repository = "https://c.example/", version = "1" }
    assert.same({ repository = "https://c.example/", version = "2", digest = SHA },
                chart.inherit(shared, { version = "2", digest = SHA }))
    assert.equal("mine", chart.inherit(shared, "mine"))
    assert.same(shared, chart.inherit(shared, nil))
    assert.is_nil(chart.inherit(nil, nil))
  end)

  it("puts spec.region into each Keystone user's region_name, endpoints winning", function()
    local v = service.values(NOVA, { version = "2024.1", region = "R2" }, service.RELEASES,
                             { registry = "r" })
    assert.same({ admin = { region_name = "R2" }, nova = { region_name = "R2" },
                  placement = { region_name = "R2" } }, v.endpoints.identity.auth)
    v = service.values(NOVA, { version = "2024.1", region = "R2", endpoints = { identity = {
      auth = { nova = { region_name = "R3" } } }, oslo_db = { host = "db" } } },
      service.RELEASES, { registry = "r" })
    assert.equal("R3", v.endpoints.identity.auth.nova.region_name)
    assert.equal("R2", v.endpoints.identity.auth.admin.region_name)
    assert.equal("db", v.endpoints.oslo_db.host)
    assert.is_nil(service.values(NOVA, { version = "2024.1" }, service.RELEASES,
                                 { registry = "r" }).endpoints)
    assert.matches("spec.region must name", service.check(NOVA, { version = "2024.1", region = "" },
                                                          service.RELEASES), 1, true)
  end)

  it("reads the health from the catalog of the service's region", function()
    local oh = require "ks.service.openstack_health"
    local mt = { __index = { hello = function() return "hi" end } }
    local cloud = setmetatable({ region = "RegionOne", name = "admin" }, mt)
    local c = oh.in_region(cloud, "R2")
    assert.equal("R2", c.region)
    assert.equal("admin", c.name)
    assert.equal("hi", c:hello())
    assert.equal("RegionOne", cloud.region) -- not changed
    assert.equal(cloud, oh.in_region(cloud, nil))
  end)

  describe("a refused chart", function()
    local ctx, events
    before_each(function()
      events = {}
      ctx = { config = { charts_dir = "/c", registry = "r", deadline = 600, poll = 1,
                         crashloop_restarts = 0 },
              event = function(t, r, m) events[#events + 1] = { t, r, m } end,
              log = { info = function() end } }
    end)

    it("applies nothing, keeps the running version and says why", function()
      local release = require "ks.release"
      local got
      release.apply = function(s)
        got = s
        return { phase = "Failed", refused = true, message = "pinned to sha256:aa; nothing applied" }
      end
      local obj = { metadata = { name = "nova", namespace = "ns", generation = 2 },
                    spec = { version = "2024.1", chart = { repository = "http://127.0.0.1:1/",
                                                           version = "0.1.0", digest = SHA } },
                    status = { version = "2023.1", revision = 1, lastGoodRevision = 1 } }
      local out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, true)
      assert.equal("http://127.0.0.1:1/", got.repo)
      assert.equal("nova", got.chart)
      assert.equal("0.1.0", got.version)
      assert.equal(SHA, got.digest)
      assert.equal("ChartRefused", out.reason)
      assert.matches("nothing applied", out.error, 1, true)
      assert.equal("2023.1", out.status.version)
      assert.is_nil(out.status.failure) -- not a failure of the release: no rollback
      assert.is_true(out.status.released) -- revision 1 was applied before
    end)
  end)

  describe("deletion without the kupenstack-services binding", function()
    local ctx, events
    before_each(function()
      events = {}
      ctx = { config = { poll = 2 }, log = { info = function() end },
              event = function(t, r, m) events[#events + 1] = { t, r, m } end }
    end)

    it("lets a service whose release applied nothing go", function()
      local obj = { metadata = { name = "keystone", namespace = "other" },
                    status = { phase = "Failed" } }
      assert.same({}, service.deletion_forbidden(obj, ctx, { code = 403, message = "forbidden" }))
      assert.same({}, events)
    end)

    it("holds one that applied something, naming the binding, with a Warning Event", function()
      local obj = { metadata = { name = "keystone", namespace = "other" },
                    status = { released = true } }
      local out = service.deletion_forbidden(obj, ctx, { code = 403,
        message = "secrets \"x\" is forbidden: " .. string.rep("y", 2000) })
      assert.equal(10, out.requeue_after)
      assert.equal("DeletionBlocked", out.status.phase)
      local m = out.conditions[1].message
      assert.matches("RoleBinding kupenstack-services", m, 1, true)
      assert.matches("namespace other", m, 1, true)
      assert.matches("is forbidden", m, 1, true)
      assert.is_true(#m < 700) -- the API's message truncated
      assert.equal("Warning", events[1][1])
      assert.equal("DeletionBlocked", events[1][2])
      obj.status = { revision = 3 } -- applied before the marker existed
      assert.equal("DeletionBlocked", service.deletion_forbidden(obj, ctx, "forbidden").status.phase)
    end)
  end)
end)
