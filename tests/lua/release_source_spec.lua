-- Unit tests of ks.release's newer pure parts: quantities compared by value where the API
-- server stores them canonical, a workload's failing pod named from its pods, and the
-- chart source (a repository's index read, the content pinned by SHA-256) with
-- ks.core.http/chart/crypto stubbed. The whole runs against a real cluster and a
-- repository on loopback in tests/e2e/release.sh.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"

local requests, stores, pages = {}, {}, {}
package.preload["ks.core.http"] = function()
  return {
    request = function(o)
      requests[#requests + 1] = o
      local p = pages[o.url]
      if not p then return nil, { code = 0, reason = "ConnectionRefused", message = o.url } end
      if p.refused then return nil, setmetatable({ reason = "Refused", message = p.refused },
        { __tostring = function(e) return e.reason .. ": " .. e.message end }) end
      return { status = 200, body = p.body }
    end,
  }
end
package.preload["ks.core.chart"] = function()
  return {
    store = function(_, sha) stores[#stores + 1] = sha; return "/cache/" .. sha .. ".tgz" end,
    digest = function(path) return "digest-of-" .. path end,
  }
end
-- A stand-in SHA-256: 64 hex digits that depend on the bytes only.
local function fake_sha(s)
  local h = 0
  for i = 1, #s do h = (h * 31 + s:byte(i)) % 4294967296 end
  return string.rep(string.format("%08x", h), 8)
end
local tokens = 0
package.preload["ks.core.crypto"] = function()
  return {
    sha256 = fake_sha,
    token = function(n) tokens = tokens + 1; return string.rep("Z", n) end,
  }
end
package.preload["ks.core.yaml"] = function()
  -- The index pages below are Lua tables already: "decode" returns them.
  return { decode = function(s) return pages.__decoded[s] end }
end

local util = require "ks.release.util"
local readiness = require "ks.release.readiness"


describe("ks.release quantities", function()
  it("parses quantities as resource.Quantity reads them", function()
    assert.equal(0.5, util.quantity("500m"))
    assert.equal(0.5, util.quantity(0.5))
    assert.equal(2 ^ 30, util.quantity("1Gi"))
    assert.equal(2 ^ 30, util.quantity("1024Mi"))
    assert.equal(1000, util.quantity("1e3"))
    assert.equal(1000, util.quantity("1k"))
    assert.is_nil(util.quantity("abc"))
    assert.is_nil(util.quantity("1Xi"))
  end)

  it("takes a declared quantity for equal to its canonical form, under resources only", function()
    local c = function(r) return { spec = { containers = { { name = "a", resources = r } } } } end
    local want = c({ requests = { cpu = 0.5, memory = "1024Mi" },
                     limits = { cpu = "1000m", memory = "1.5Gi" } })
    local have = c({ requests = { cpu = "500m", memory = "1Gi" },
                     limits = { cpu = "1", memory = "1536Mi" } })
    assert.is_nil(util.differs(want, have))
    have.spec.containers[1].resources.requests.cpu = "600m"
    assert.equal(".spec.containers[0].resources.requests.cpu", util.differs(want, have))
    -- Elsewhere a string is a string: "1k" in a ConfigMap is not "1000".
    assert.equal(".data.n", util.differs({ data = { n = "1k" } }, { data = { n = "1000" } }))
  end)
end)


describe("ks.release pod problems", function()
  local function pod(name, phase, cs)
    return { metadata = { name = name }, status = { phase = phase, containerStatuses = cs } }
  end

  it("names a crash-looping pod's container, reason, message and last exit", function()
    local pods = {
      pod("web-1", "Running", { { name = "web", ready = true, state = { running = {} } } }),
      pod("web-2", "Running", { { name = "web", ready = false, restartCount = 4,
        state = { waiting = { reason = "CrashLoopBackOff", message = "back-off 4s" } },
        lastState = { terminated = { exitCode = 1, message = "db unreachable" } } } }),
    }
    assert.equal("pod web-2 container web: CrashLoopBackOff: back-off 4s (restarts 4); " ..
      "last exit 1: db unreachable", readiness.pod_problem(pods))
  end)

  it("names a running pod that never gets Ready, and is bounded", function()
    local pods = { pod("api-1", "Running", { { name = "api", ready = false,
      state = { running = {} } } }) }
    assert.equal("pod api-1 container api running but not Ready (restarts 0)",
                 readiness.pod_problem(pods))
    local long = pod("x", "Running", { { name = "c", state = { waiting = {
      reason = "ErrImagePull", message = string.rep("m", 5000) } } } })
    assert.is_true(#readiness.pod_problem({ long }, 300) <= 303)
    assert.is_nil(readiness.pod_problem({ pod("ok", "Running", { { name = "c", ready = true,
      state = { running = {} } } }) }))
  end)
end)


describe("ks.release.source", function()
  local source
  local REPO = "http://127.0.0.1:8879/charts"
  local TGZ1, TGZ2 = "chart bytes v1", "chart bytes, other content"

  local function serve(index_digest, tgz)
    pages.__decoded = pages.__decoded or {}
    local idx = { apiVersion = "v1", entries = { svc = { { name = "svc", version = "0.1.0",
      digest = index_digest, urls = { "svc-0.1.0.tgz" } } } } }
    pages[REPO .. "/index.yaml"] = { body = "index" .. index_digest }
    pages.__decoded["index" .. index_digest] = idx
    pages[REPO .. "/svc-0.1.0.tgz"] = { body = tgz }
  end

  before_each(function()
    package.loaded["ks.release.source"] = nil
    source = require "ks.release.source"
    requests, stores = {}, {}
    for k in pairs(pages) do pages[k] = nil end
  end)

  local function spec(extra)
    local s = { repo = REPO, chart = "svc", version = "0.1.0", allow = "127.0.0.0/8",
                index_ttl = 0 }
    for k, v in pairs(extra or {}) do s[k] = v end
    return s
  end

  it("fetches the version's .tgz through a guarded request and pins its SHA-256", function()
    serve(fake_sha(TGZ1), TGZ1)
    local st = {}
    local path, d = source.resolve(spec(), st)
    assert.equal("/cache/" .. fake_sha(TGZ1) .. ".tgz", path)
    assert.equal("sha256:" .. fake_sha(TGZ1), d)
    assert.equal(REPO .. "/index.yaml", requests[1].url)
    assert.equal(REPO .. "/svc-0.1.0.tgz", requests[2].url)
    for _, r in ipairs(requests) do
      assert.is_true(r.guard)
      assert.equal("127.0.0.0/8", r.allow)
    end
    assert.equal(fake_sha(TGZ1), st.charts[REPO .. "/ svc 0.1.0"])
  end)

  it("refuses other content under the pinned version, before fetching it", function()
    serve(fake_sha(TGZ1), TGZ1)
    local st = {}
    assert.truthy(source.resolve(spec(), st))
    serve(fake_sha(TGZ2), TGZ2)
    requests = {}
    local path, err = source.resolve(spec(), st)
    assert.is_nil(path)
    assert.truthy(err:find("the release is pinned to sha256:" .. fake_sha(TGZ1), 1, true))
    assert.truthy(err:find("nothing applied", 1, true))
    assert.equal(1, #requests) -- the index only
  end)

  it("refuses bytes that are not what the index or spec.digest says", function()
    serve(fake_sha(TGZ1), TGZ2)
    local path, err = source.resolve(spec(), {})
    assert.is_nil(path)
    assert.truthy(err:find("served content sha256:" .. fake_sha(TGZ2) ..
                           " but its index lists sha256:" .. fake_sha(TGZ1), 1, true))
    assert.equal(0, #stores)
    serve(fake_sha(TGZ2), TGZ2)
    path, err = source.resolve(spec({ digest = "sha256:" .. fake_sha(TGZ1) }), {})
    assert.is_nil(path)
    assert.truthy(err:find("pinned to sha256:" .. fake_sha(TGZ1), 1, true))
    local _, e2 = source.resolve(spec({ digest = "md5:abc" }), {})
    assert.truthy(e2:find("spec.digest", 1, true))
  end)

  it("says a refused address and a missing version plainly", function()
    pages[REPO .. "/index.yaml"] = { refused = "169.254.169.254 is a link-local address" }
    local _, err = source.resolve(spec(), {})
    assert.truthy(err:find("169.254.169.254 is a link-local address", 1, true))
    assert.truthy(err:find("operator allows", 1, true))
    serve(fake_sha(TGZ1), TGZ1)
    _, err = source.resolve(spec({ version = "9.9.9" }), {})
    assert.truthy(err:find("has no svc version 9.9.9", 1, true))
  end)

  it("reads an index again only after its TTL", function()
    serve(fake_sha(TGZ1), TGZ1)
    local st = {}
    assert.truthy(source.resolve(spec({ index_ttl = 30 }), st))
    serve(fake_sha(TGZ2), TGZ2)
    requests = {}
    assert.truthy(source.resolve(spec({ index_ttl = 30 }), st)) -- the index read before
    assert.equal(0, #requests)
    shim.clock.mono = shim.clock.mono + 31
    local path, err = source.resolve(spec({ index_ttl = 30 }), st)
    assert.is_nil(path)
    assert.truthy(err:find("pinned to", 1, true))
    assert.equal(1, #requests)
  end)

  it("knows a local chart by the digest of its files", function()
    local path, d = source.resolve({ chart = "/charts/svc.tgz" }, {})
    assert.equal("/charts/svc.tgz", path)
    assert.equal("digest-of-/charts/svc.tgz", d)
  end)

  it("refuses a local chart whose content is not the pinned digest, naming both", function()
    local path, d = source.resolve({ chart = "/charts/svc.tgz", digest = "digest-of-/charts/svc.tgz" }, {})
    assert.equal("/charts/svc.tgz", path)
    assert.equal("digest-of-/charts/svc.tgz", d)
    local none, err = source.resolve({ chart = "/charts/svc.tgz", digest = "0123456789abcdef" }, {})
    assert.is_nil(none)
    assert.matches("has digest digest-of-/charts/svc.tgz but the release is pinned to " ..
                   "0123456789abcdef; nothing applied", err, 1, true)
  end)
end)


describe("ks.release pins", function()
  it("are drawn from ks.core.crypto, not math.random", function()
    -- The engine's values_of is reached through apply; a state stub answers load/save.
    package.loaded["ks.release"] = nil
    package.loaded["ks.release.state"] = { load = function()
      return { inventory = {}, history = {}, hooks = {}, pins = {}, charts = {}, raw = {} }
    end, save = function() return 0 end, KEEP = 10 }
    package.preload["ks.core.helm"] = function()
      return { render = function() return nil, "stop here" end }
    end
    package.preload["ks.core.kube"] = function() return {} end
    local real_random = math.random
    math.random = function() error("math.random used for a pin") end -- luacheck: ignore
    local release = require "ks.release"
    tokens = 0
    local _, err = release.apply{ chart = "/c", name = "r", namespace = "ns",
                                  pins = { ["secrets.key"] = 24 } }
    math.random = real_random -- luacheck: ignore
    assert.truthy(tostring(err):find("stop here", 1, true))
    assert.equal(1, tokens)
    local r = release.apply{ chart = "/c", name = "r", namespace = "ns",
                             pins = { ["secrets.key"] = 0 } }
    assert.equal("Failed", r.phase)
    assert.truthy(r.message:find("pins.secrets.key", 1, true))
  end)
end)
