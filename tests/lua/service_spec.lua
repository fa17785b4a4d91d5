-- Unit tests of the pure parts of ks.service: the merge of settings, the release table and
-- the operator's additions, the spec check (errors name the field), the chart values a
-- spec gives and the per-component readiness gate. The kinds run against a real cluster
-- in tests/e2e/services.sh.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
package.preload["ks.core.kube"] = function() return {} end
package.preload["ks.release"] = function() return {} end -- the engine: not under test here

local service

local NOVA = { kind = "Nova", chart = "nova", components = { "api", "conductor" },
               jobs = { "db_sync" } }


describe("ks.service", function()
  before_each(function()
    shim.reset()
    package.loaded["ks.service"] = nil
    service = require "ks.service"
  end)

  it("merges mappings key by key and replaces lists and scalars", function()
    local out = service.merge({ a = { x = 1, y = 2 }, l = { 1, 2 }, s = "a" },
                              { a = { y = 3 }, l = { 9 }, s = "b" })
    assert.same({ a = { x = 1, y = 3 }, l = { 9 }, s = "b" }, out)
  end)

  it("extends the release table from the setting 'releases'", function()
    local t = assert(service.releases({ releases = "2099.1: {tag: future}\n2023.1: {tag: mine}" }))
    assert.equal("future", t["2099.1"].tag)
    assert.equal("mine", t["2023.1"].tag)
    assert.equal("2024.1-ubuntu_jammy", t["2024.1"].tag)
    assert.equal("2023.1-ubuntu_jammy", service.RELEASES["2023.1"].tag) -- not changed
    local bad, err = service.releases({ releases = "2099.1: {tag: [1]}" })
    assert.is_nil(bad)
    assert.matches("release '2099.1' needs a string 'tag'", err, 1, true)
  end)

  it("names the field of a bad spec", function()
    local t = service.RELEASES
    assert.matches("spec.version must name", service.check(NOVA, {}, t), 1, true)
    assert.matches("spec.version: unknown release '1999.9'",
                   service.check(NOVA, { version = "1999.9" }, t), 1, true)
    assert.matches("spec.replicas.compute: Nova has no such component",
                   service.check(NOVA, { version = "2024.1", replicas = { compute = 1 } }, t), 1, true)
    assert.matches("spec.replicas.api must be a whole number",
                   service.check(NOVA, { version = "2024.1", replicas = { api = 1.5 } }, t), 1, true)
    assert.matches("spec.images.x: Nova has no such image",
                   service.check(NOVA, { version = "2024.1", images = { x = "a" } }, t), 1, true)
    assert.matches("spec.conf must be a mapping",
                   service.check(NOVA, { version = "2024.1", conf = { 1 } }, t), 1, true)
    assert.is_nil(service.check(NOVA, { version = "2024.1", replicas = { api = 3 } }, t))
  end)

  it("chooses images from the release table, spec.images winning; raw values last", function()
    local t = assert(service.releases({ releases = "2024.1: {images: {nova.conductor: reg/c:x}}" }))
    local v = service.values(NOVA, { version = "2024.1", images = { api = "my/api:1" },
                                     replicas = { api = 3 }, conf = { nova = { DEFAULT = { debug = true } } },
                                     values = { pod = { replicas = { conductor = 2 } } } },
                             t, { registry = "docker.io/openstackhelm" })
    assert.same({ api = "my/api:1", conductor = "reg/c:x",
                  db_sync = "docker.io/openstackhelm/nova:2024.1-ubuntu_jammy" }, v.images.tags)
    assert.same({ api = 3, conductor = 2 }, v.pod.replicas)
    assert.is_true(v.conf.nova.DEFAULT.debug)
    local r = service.values(NOVA, { version = "2023.1", imageRegistry = "r.example" }, t, { registry = "x" })
    assert.equal("r.example/nova:2023.1-ubuntu_jammy", r.images.tags.api)
    assert.is_nil(r.pod)
  end)

  it("gates on a dependency's component ready at the wanted version", function()
    local function svc(st, gen)
      return { kind = "Keystone", metadata = { name = "cp-keystone", generation = gen or 1 },
               status = st }
    end
    local ready = { observedGeneration = 1, version = "2024.1",
                    components = { api = { ready = "2/2", upToDate = true } } }
    assert.is_true(service.component_ready(svc(ready), "api", "2024.1"))
    local ok, why = service.component_ready(svc(ready), "api", "2024.2")
    assert.is_false(ok)
    assert.matches("Keystone/cp-keystone runs 2024.1, not 2024.2", why, 1, true)
    ok, why = service.component_ready(svc(ready, 2), "api", "2024.1")
    assert.is_false(ok)
    assert.matches("change not yet reconciled", why, 1, true)
    ready.components.api = { ready = "1/2", upToDate = true }
    ok, why = service.component_ready(svc(ready), "api", "2024.1")
    assert.is_false(ok)
    assert.matches("api is not ready (1/2)", why, 1, true)
    ready.components.api = { ready = "2/2", upToDate = false }
    assert.is_false(service.component_ready(svc(ready), "api", "2024.1"))
  end)

  it("takes maxUnavailable as a number or a percentage into OpenStack-Helm's rolling update key", function()
    local t = service.RELEASES
    assert.matches("spec.maxUnavailable must be", service.check(NOVA, { version = "2024.1",
      maxUnavailable = "lots" }, t), 1, true)
    assert.is_nil(service.check(NOVA, { version = "2024.1", maxUnavailable = 0 }, t))
    assert.is_nil(service.check(NOVA, { version = "2024.1", maxUnavailable = "25%" }, t))
    local v = service.values(NOVA, { version = "2024.1", maxUnavailable = 0, replicas = { api = 2 } },
                             t, { registry = "r" })
    assert.equal(0, v.pod.lifecycle.upgrades.deployments.rolling_update.max_unavailable)
    assert.equal(2, v.pod.replicas.api)
  end)

  it("takes null fields (a mapping a server-side apply emptied) for absent ones", function()
    local null = require("ks.core.json").null
    assert.same({ version = "2024.1" }, service.without_nulls({ version = "2024.1", values = null }))
    assert.same({}, service.without_nulls(nil))
  end)

  it("clears the failure of an older generation and old crash loops once the service is Ready", function()
    local release = require "ks.release"
    local kube = require "ks.core.kube"
    release.apply = function() return { phase = "Ready", revision = 3 } end
    kube.batch = function(_, objs)
      local out = {}
      for i, o in ipairs(objs) do
        out[i] = { object = { kind = "Deployment", metadata = o.metadata,
                              spec = { replicas = 1 }, status = { replicas = 1, readyReplicas = 1,
                              updatedReplicas = 1, availableReplicas = 1, observedGeneration = 1 } } }
      end
      return out
    end
    local ctx = { config = { charts_dir = "/c", registry = "r", deadline = 600, poll = 1,
                             crashloop_restarts = 0 },
                  event = function() end, log = { info = function() end } }
    local obj = { metadata = { name = "keystone", namespace = "ns", generation = 3 },
                  spec = { version = "2024.1" },
                  status = { failure = { generation = 2, message = "Job failed" },
                             crashLoops = { { pod = "p", restarts = 6 } } } }
    local out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.equal("Ready", out.status.phase)
    assert.equal(require("ks.core.json").null, out.status.failure) -- taken out of the status
    assert.equal(require("ks.core.json").null, out.status.crashLoops) -- and the old reports
    obj.status.failure.generation = 3 -- this generation's: kept
    out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.equal("Job failed", out.status.failure.message)
  end)

  it("once Ready, a generation past its deadline and not Ready for a moment is not failed nor rolled back", function()
    local release = require "ks.release"
    local kube = require "ks.core.kube"
    local phase, applied = "Ready", {}
    release.apply = function(a)
      applied[#applied + 1] = a.rollback_to or "current"
      return { phase = phase, revision = 4, message = "Job db-sync: not complete" }
    end
    kube.batch = function(_, objs)
      local out = {}
      for i, o in ipairs(objs) do
        out[i] = { object = { kind = "Deployment", metadata = o.metadata,
                              spec = { replicas = 1 }, status = { replicas = 1, readyReplicas = 1,
                              updatedReplicas = 1, availableReplicas = 1, observedGeneration = 1 } } }
      end
      return out
    end
    local events = {}
    local ctx = { config = { charts_dir = "/c", registry = "r", deadline = 600, poll = 1,
                             crashloop_restarts = 0 },
                  event = function(t, r) events[#events + 1] = t .. " " .. r end,
                  log = { info = function() end } }
    local long_ago = require("ks.core.time").now() - 3600
    local obj = { metadata = { name = "keystone", namespace = "ns", generation = 2 },
                  spec = { version = "2024.1" },
                  status = { attempt = { generation = 2, since = long_ago },
                             lastGoodRevision = 3, lastGoodVersion = "2023.2" } }
    local out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.equal("Ready", out.status.phase)
    assert.is_true(out.status.attempt.ready)
    obj.status.attempt = out.status.attempt
    phase = "Progressing" -- an hour after this generation began
    out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.is_nil(out.status.failure)
    assert.same({ "current", "current" }, applied)
    assert.same({}, events)
    -- a generation never Ready past its deadline still fails (and rolls back)
    obj.status.attempt = { generation = 2, since = long_ago }
    out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.matches("not healthy within 600s", out.status.failure.message, 1, true)
    assert.same({ "Warning Failed", "Warning RollingBack" }, events)
    -- a new generation's attempt says ready = false: the status is merged into the old
    -- one, and a left-out ready would keep the older generation's true
    phase = "Progressing"
    obj.metadata.generation = 3
    obj.status = { attempt = { generation = 2, since = long_ago, ready = true } }
    out = service.applied(NOVA, obj, ctx, service.RELEASES, {}, false)
    assert.same({ generation = 3, since = require("ks.core.time").now(), ready = false },
                out.status.attempt)
  end)

  describe("health.pod_message", function()
    local health = require "ks.service.health"
    local function pod(cs, phase)
      return { metadata = { name = "p" }, status = { phase = phase or "Running", containerStatuses = cs } }
    end

    it("says why a crash-looping container is not Ready, with its last message", function()
      local m = health.pod_message(pod({ { ready = false, restartCount = 3,
        state = { waiting = { reason = "CrashLoopBackOff" } },
        lastState = { terminated = { reason = "Error", exitCode = 2, message = "db gone" } } } }))
      assert.equal("CrashLoopBackOff, Error (exit 2), restarted 3 times: db gone", m)
    end)

    it("names a running container that is not Ready, and nothing for a Ready pod", function()
      assert.equal("running, not Ready",
                   health.pod_message(pod({ { ready = false, state = { running = {} } } })))
      assert.is_nil(health.pod_message(pod({ { ready = true, state = { running = {} } } })))
      assert.matches("Pending", health.pod_message(pod({}, "Pending")), 1, true)
    end)
  end)
end)
