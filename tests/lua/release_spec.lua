-- Unit tests of the pure parts of ks.release: the subset comparison that decides a write,
-- readiness per kind, the hook split, the fit to a 1.20 cluster (discovery answered by a
-- stub of ks.core.kube) and the parsing of an apply conflict. The whole engine runs
-- against a real cluster in tests/e2e/release.sh.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"

-- What a Kubernetes 1.20 API server serves of the group/versions the specs use.
local SERVED = {
  ["v1"] = { { name = "services", kind = "Service", namespaced = true },
             { name = "secrets", kind = "Secret", namespaced = true },
             { name = "configmaps", kind = "ConfigMap", namespaced = true },
             { name = "namespaces", kind = "Namespace", namespaced = false } },
  ["policy/v1beta1"] = { { name = "poddisruptionbudgets", kind = "PodDisruptionBudget",
                           namespaced = true } },
  ["batch/v1"] = { { name = "jobs", kind = "Job", namespaced = true } },
  ["apps/v1"] = { { name = "deployments", kind = "Deployment", namespaced = true } },
  ["batch/v1beta1"] = { { name = "cronjobs", kind = "CronJob", namespaced = true } },
  ["rbac.authorization.k8s.io/v1"] = { { name = "clusterroles", kind = "ClusterRole",
                                         namespaced = false } },
}
local discovered = {}
local live_objs, applied = {}, {}
package.preload["ks.core.kube"] = function()
  return {
    fetch = function(o) return live_objs[o.metadata.name] end,
    apply = function(o) applied[#applied + 1] = o; return o end,
    discover = function(gv)
      discovered[#discovered + 1] = gv
      if not SERVED[gv] then return nil, { code = 404, reason = "NotFound", message = gv } end
      return { resources = SERVED[gv] }
    end,
  }
end

local util, readiness, hooks, fit, apply


local function obj(api, kind, name, extra)
  local o = { apiVersion = api, kind = kind, metadata = { name = name } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end


describe("ks.release", function()
  before_each(function()
    shim.reset()
    for _, m in ipairs({ "util", "readiness", "hooks", "fit", "apply" }) do
      package.loaded["ks.release." .. m] = nil
    end
    util = require "ks.release.util"
    readiness = require "ks.release.readiness"
    hooks = require "ks.release.hooks"
    fit = require "ks.release.fit"
    apply = require "ks.release.apply"
    discovered = {}
  end)

  describe("util.differs", function()
    it("takes defaults the server added for equal, and names the first changed field", function()
      local want = { spec = { replicas = 1, template = { spec = { containers = {
        { name = "a", image = "x:1" } } } } } }
      local have = { spec = { replicas = 1, strategy = { type = "RollingUpdate" },
        template = { spec = { containers = { { name = "a", image = "x:1",
                                               imagePullPolicy = "IfNotPresent" } } } } } }
      assert.is_nil(util.differs(want, have))
      have.spec.replicas = 3
      assert.equal(".spec.replicas", util.differs(want, have))
      have.spec.replicas = 1
      have.spec.template.spec.containers[1].image = "x:2"
      assert.equal(".spec.template.spec.containers[0].image", util.differs(want, have))
    end)

    it("matches empty maps and lists with absent fields, but not lists of other lengths", function()
      assert.is_nil(util.differs({ a = {}, b = 1 }, { b = 1 }))
      assert.equal(".l", util.differs({ l = { 1, 2 } }, { l = { 1, 2, 3 } }))
    end)

    it("gives equal digests for equal values built in another order", function()
      local a, b = { x = 1, y = { 2, 3 } }, {}
      b.y = { 2, 3 }
      b.x = 1
      assert.equal(util.digest(a), util.digest(b))
      b.x = 2
      assert.not_equal(util.digest(a), util.digest(b))
    end)

    it("writes null as null, so a digest holding one is the same after a restart", function()
      -- A chart's `annotations:` with nothing under it renders to null: the host's is a
      -- light userdata whose address differs from one process to the next (the hook Jobs
      -- of every release ran again after each restart). Another process is played by
      -- another null of the same kind.
      local json = require "ks.core.json"
      local saved = json.null
      local function job() return { kind = "Job", spec = { template = { metadata = {
        annotations = json.null } } } } end
      assert.equal('{"kind":"Job","spec":{"template":{"metadata":{"annotations":null}}}}',
                   util.canonical(job()))
      local d = util.digest(job())
      json.null = newproxy()
      local again = util.digest(job())
      json.null = saved
      assert.equal(d, again)
    end)

    it("truncates a long message and says by how much", function()
      local s = util.truncate(string.rep("e", 5000), 100)
      assert.equal(100 + #"... (4900 more bytes)", #s)
      assert.truthy(s:find("4900 more bytes", 1, true))
    end)
  end)

  describe("readiness", function()
    local function deploy(gen, seen, st)
      st.observedGeneration = seen
      return { kind = "Deployment", metadata = { generation = gen }, spec = { replicas = 2 },
               status = st }
    end

    it("waits for a Deployment at its current generation, updated and available", function()
      assert.equal("waiting", (readiness.of(deploy(2, 1, { updatedReplicas = 2,
        replicas = 2, availableReplicas = 2 }))))
      assert.equal("waiting", (readiness.of(deploy(2, 2, { updatedReplicas = 1,
        replicas = 2, availableReplicas = 2 }))))
      assert.equal("waiting", (readiness.of(deploy(2, 2, { updatedReplicas = 2,
        replicas = 3, availableReplicas = 2 }))))
      assert.equal("ready", (readiness.of(deploy(2, 2, { updatedReplicas = 2, replicas = 2,
        availableReplicas = 2 }))))
    end)

    it("fails a Deployment past its progress deadline, with the message", function()
      local s, msg = readiness.of(deploy(1, 1, { conditions = { { type = "Progressing",
        status = "False", reason = "ProgressDeadlineExceeded", message = "too slow" } } }))
      assert.equal("failed", s)
      assert.truthy(msg:find("too slow", 1, true))
    end)

    it("reads a Job's Complete and Failed conditions", function()
      local failed = { kind = "Job", metadata = {}, status = { conditions = { { type = "Failed",
        status = "True", reason = "BackoffLimitExceeded", message = "gave up" } } } }
      local s, msg = readiness.of(failed)
      assert.equal("failed", s)
      assert.truthy(msg:find("BackoffLimitExceeded: gave up", 1, true))
      assert.equal("ready", (readiness.of({ kind = "Job", metadata = {}, status = {
        conditions = { { type = "Complete", status = "True" } } } })))
      assert.equal("waiting", (readiness.of({ kind = "Job", metadata = {}, status = {} })))
    end)

    it("takes a StatefulSet mid-rollout for waiting", function()
      local s = { kind = "StatefulSet", metadata = { generation = 1 }, spec = { replicas = 1 },
                  status = { observedGeneration = 1, readyReplicas = 1, updatedReplicas = 1,
                             currentRevision = "a", updateRevision = "b" } }
      assert.equal("waiting", (readiness.of(s)))
      s.status.currentRevision = "b"
      assert.equal("ready", (readiness.of(s)))
    end)
  end)

  describe("hooks", function()
    local function hook(name, events, weight, policy)
      return obj("batch/v1", "Job", name, { metadata = { name = name, annotations = {
        ["helm.sh/hook"] = events, ["helm.sh/hook-weight"] = weight,
        ["helm.sh/hook-delete-policy"] = policy } } })
    end

    it("sorts post hooks by weight, keeps pre-delete apart and skips test hooks", function()
      local parts = hooks.split({
        obj("v1", "ConfigMap", "plain"),
        hook("b", "post-install,post-upgrade", "5"),
        hook("a", "post-install", "-5", "hook-succeeded"),
        hook("t", "test"),
        hook("d", "pre-delete"),
        hook("p", "pre-install"),
      })
      assert.equal(1, #parts.plain)
      assert.same({ "a", "b" }, { parts.post[1].obj.metadata.name, parts.post[2].obj.metadata.name })
      assert.equal("d", parts.pre_delete[1].obj.metadata.name)
      assert.equal("p", parts.pre_install[1].obj.metadata.name)
      assert.equal(1, parts.skipped)
      assert.is_true(parts.post[1].hook.delete["hook-succeeded"])
      assert.is_true(parts.post[2].hook.delete["before-hook-creation"]) -- Helm 3's default
      assert.is_true(hooks.due(parts.post[1], false))
      assert.is_false(hooks.due(parts.post[1], true))
      assert.is_true(hooks.due(parts.post[2], true))
    end)
  end)

  describe("fit", function()
    it("rewrites policy/v1 and batch/v1 CronJob to v1beta1, sets the namespace and the protocol", function()
      local objs = {
        obj("policy/v1", "PodDisruptionBudget", "pdb", { spec = { minAvailable = 1 } }),
        obj("batch/v1", "CronJob", "cron", { spec = { schedule = "* * * * *" } }),
        obj("v1", "Service", "svc", { spec = { ports = { { port = 80 } } } }),
        obj("v1", "Secret", "s", { stringData = { k = "v" } }),
      }
      assert.truthy(fit.fit(objs, "ns"))
      assert.equal("policy/v1beta1", objs[1].apiVersion)
      assert.equal("batch/v1beta1", objs[2].apiVersion)
      assert.equal("TCP", objs[3].spec.ports[1].protocol)
      assert.same({ k = "dg==" }, objs[4].data)
      assert.is_nil(objs[4].stringData)
      for _, o in ipairs(objs) do assert.equal("ns", o.metadata.namespace) end
    end)

    it("asks discovery once per group/version", function()
      fit.fit({ obj("v1", "ConfigMap", "a") }, "ns")
      fit.fit({ obj("v1", "ConfigMap", "b") }, "ns")
      assert.same({ "v1" }, discovered)
    end)

    it("refuses what cannot be fitted, naming the object and the field", function()
      local _, err = fit.fit({ obj("batch/v1", "CronJob", "c", { spec = { timeZone = "UTC" } }) }, "ns")
      assert.truthy(err:find("CronJob/c", 1, true) and err:find("spec.timeZone", 1, true))
      _, err = fit.fit({ obj("example.com/v9", "Gizmo", "g") }, "ns")
      assert.truthy(err:find("serves no example.com/v9 Gizmo", 1, true))
    end)

    it("writes quantities given as numbers as strings (server-side apply refuses numbers)", function()
      local d = obj("apps/v1", "Deployment", "d", { spec = { template = { spec = {
        containers = { { name = "c", resources = { requests = { cpu = 0.5, memory = "1Gi" },
                                                   limits = { cpu = 2 } } } },
        volumes = { { name = "v", emptyDir = { sizeLimit = 1000 } } } } } } })
      local out = assert(fit.fit({ d }, "ns"))
      local c = out[1].spec.template.spec.containers[1].resources
      assert.same({ requests = { cpu = "0.5", memory = "1Gi" }, limits = { cpu = "2" } }, c)
      assert.equal("1000", out[1].spec.template.spec.volumes[1].emptyDir.sizeLimit)
    end)

    it("refuses another namespace and cluster-scoped kinds", function()
      local o = obj("v1", "ConfigMap", "x")
      o.metadata.namespace = "kube-system"
      local _, err = fit.fit({ o }, "ns")
      assert.truthy(err:find("names namespace 'kube-system'", 1, true))
      _, err = fit.fit({ obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r") }, "ns")
      assert.truthy(err:find("ClusterRole/r is cluster-scoped", 1, true))
      _, err = fit.fit({ obj("v1", "Namespace", "n") }, "ns")
      assert.truthy(err:find("cluster-scoped", 1, true))
    end)
  end)

  describe("apply.put", function()
    local function deploy(ann)
      return obj("apps/v1", "Deployment", "d", { spec = { template = { metadata = {
        annotations = ann } } } })
    end
    before_each(function() live_objs, applied = {}, {} end)

    it("keeps an object whose declared fields are all live", function()
      live_objs.d = deploy({ a = "1", fault = "crashloop" })
      local d = deploy({ a = "1" })
      assert.truthy(apply.put(d, { writes = 0 }))
      assert.equal(0, #applied)
    end)

    it("applies a declaration changed since the last apply, though a field was only taken out", function()
      live_objs.d = deploy({ a = "1", fault = "crashloop" })
      local d = deploy({ a = "1" })
      local ctx = { writes = 0, changed = { [util.key(d)] = true } }
      assert.truthy(apply.put(d, ctx))
      assert.equal(1, #applied)
      assert.equal(1, ctx.writes)
    end)
  end)

  describe("apply.conflicts", function()
    it("names the managers and fields of a 409 apply conflict", function()
      local msg = 'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using ' ..
        'apps/v1:\n- .spec.replicas\nconflict with "helm" using apps/v1: .spec.paused'
      local c = apply.conflicts('Apply failed with 1 conflict: conflict with "kubectl-edit" ' ..
        'using apps/v1: .spec.replicas')
      assert.same({ { manager = "kubectl-edit", field = ".spec.replicas" } }, c)
      assert.same({ { manager = "kubectl-edit", field = ".spec.replicas" },
                    { manager = "helm", field = ".spec.paused" } }, apply.conflicts(msg))
    end)
  end)
end)
