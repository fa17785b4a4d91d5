-- ks/service: an OpenStack service (Keystone, Glance, Nova...) as a custom resource,
-- deployed from its OpenStack-Helm chart by ks.release. A service plugin is a few lines:
--
--   return require("ks.service").kind {
--     kind = "Nova", chart = "nova",
--     components = { "api", "conductor", "scheduler" },   -- pod.replicas keys: Deployments
--     jobs = { "db_sync" },                                 -- images.tags keys of its Jobs
--     depends = { Keystone = { "api" }, Placement = { "api" } },
--   }
--
-- The spec (crds/<kind>.yaml): version (an OpenStack release of the release table: it
-- chooses the image tags), imageRegistry, images (per component, wins over the table),
-- replicas (per component), conf (merged into the chart's conf), endpoints, values (raw,
-- merged last), chart (a chart of the operator's charts directory, or of a chart
-- repository pinned by its digest: ks.service.chart), region (the charts'
-- endpoints.identity.auth.<user>.region_name, for the users def.auth names, default
-- {"admin", <chart>}; the catalog region the OpenStack health check reads), paused,
-- maxUnavailable (every Deployment's rolling update: OpenStack-Helm's
-- pod.lifecycle.upgrades.deployments.rolling_update.max_unavailable), rollbackOnFailure
-- and progressDeadlineSeconds (failure: see applied below). Its checks and the chart values
-- made from it: ks.service.spec.
--
-- Ordering: before it applies anything, a service waits until each component it depends
-- on is ready at the version it wants itself (per component, not per whole service). A
-- dependency of kind K is the object named PREFIX .. lower(K) of the namespace, where
-- PREFIX is "<controlplane>-" for a service a ControlPlane owns (its label
-- kupenstack.io/controlplane), else "" (a lone Keystone is named "keystone").
--
-- Status: phase, version (the one running, set once the release is Ready at it),
-- wantedVersion, revision, chartDigest (the content digest of the chart applied),
-- released (the release has written its state: deletion has something to tear down),
-- ready ("x/y" components), components.<c> = {ready = "x/y",
-- upToDate}, conditions Ready, Progressing, Degraded, UpgradeInProgress.
local kube = require "ks.core.kube"
local release = require "ks.release"
local readiness = require "ks.release.readiness"
local health = require "ks.service.health"
local openstack_health = require "ks.service.openstack_health"
local chart = require "ks.service.chart"
local spec_of = require "ks.service.spec"
local time = require "ks.core.time"
local json = require "ks.core.json"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

_M.GROUP = "kupenstack.io"
_M.VERSION = "v1alpha1"
-- What a service declares (ks.service.spec), here too for the plugins and the specs.
_M.RELEASES = spec_of.RELEASES
_M.merge = spec_of.merge
_M.without_nulls = spec_of.without_nulls
_M.releases = spec_of.releases
_M.check = spec_of.check
_M.values = spec_of.values

-- "x/y" -> x, y
local function counts(s)
  local x, y = tostring(s or ""):match("^(%d+)/(%d+)$")
  return tonumber(x), tonumber(y)
end


-- Is component c of the service object svc ready at version v? true, or false, why.
function _M.component_ready(svc, c, v)
  local name = svc.kind .. "/" .. svc.metadata.name
  local st = svc.status or {}
  if (st.observedGeneration or 0) < (svc.metadata.generation or 0) then
    return false, name .. " has a change not yet reconciled"
  end
  if st.version ~= v then
    return false, name .. " runs " .. tostring(st.version or "nothing yet") .. ", not " .. v
  end
  local comp = (st.components or {})[c]
  local x, y = counts(comp and comp.ready)
  if not comp or not comp.upToDate or not x or x < y or y == 0 then
    return false, name .. " " .. c .. " is not ready (" .. tostring(comp and comp.ready or "0/0") .. ")"
  end
  return true
end


local function prefix_of(obj)
  local cp = (obj.metadata.labels or {})["kupenstack.io/controlplane"]
  return cp and (cp .. "-") or ""
end


-- The first dependency not ready, as a message; nil when all are.
local function waiting_for(def, obj, v)
  for _, kind in ipairs(spec_of.sorted_keys(def.depends or {})) do
    local name = prefix_of(obj) .. kind:lower()
    local dep, err = kube.fetch({ group = _M.GROUP, version = _M.VERSION, kind = kind },
                                obj.metadata.namespace, name)
    if not dep then
      if err and err.code ~= 404 then return nil, err end
      return kind .. "/" .. name .. " does not exist"
    end
    for _, c in ipairs(def.depends[kind]) do
      local ok, why = _M.component_ready(dep, c, v)
      if not ok then return why end
    end
  end
  return nil
end


local function deployment_name(obj, c)
  return obj.metadata.name .. "-" .. c:gsub("_", "-")
end


-- Per component: { ready = "x/y", upToDate = bool, message = }; and how many are ready.
local function components(def, obj)
  local objs = {}
  for i, c in ipairs(def.components) do
    objs[i] = { apiVersion = "apps/v1", kind = "Deployment",
                metadata = { namespace = obj.metadata.namespace, name = deployment_name(obj, c) } }
  end
  local got, err = kube.batch("fetch", objs)
  if not got then return nil, err end
  local out, ready, deps = {}, 0, {}
  for i, c in ipairs(def.components) do
    local d = got[i].object
    deps[c] = d
    if d then
      local s, msg = readiness.of(d)
      local want = (d.spec or {}).replicas or 1
      out[c] = { ready = tostring((d.status or {}).readyReplicas or 0) .. "/" .. tostring(want),
                 upToDate = s == "ready", message = msg }
      if s == "ready" then ready = ready + 1 end
    else
      out[c] = { ready = "0/0", upToDate = false, message = "no Deployment " .. objs[i].metadata.name }
    end
  end
  return out, ready, deps
end


local function cond(ctype, ok, reason, message)
  return { type = ctype, status = ok and "True" or "False", reason = reason, message = message }
end


-- A failure: status.phase Failed and status.message; the host puts the error on the
-- conditions Progressing and Available (reason: InvalidConfiguration when terminal, not
-- retried; else Transient, retried with backoff).
function _M.failed(reason, message, terminal, base)
  base = base or {}
  base.phase = "Failed"
  base.message = message
  return { status = base, error = message, terminal = terminal or nil, reason = reason }
end


local function config_schema()
  return {
    charts_dir = { type = "string", required = true, description = "where the charts are" },
    registry = { type = "string", default = "docker.io/openstackhelm",
                 description = "the image registry when the spec names none" },
    releases = { type = "string", default = "",
                 description = "YAML: more releases for the release table (release -> {tag=, images=})" },
    poll = { type = "number", default = 2, description = "seconds between readiness checks" },
    check_interval = { type = "number", default = 30,
                       description = "seconds between checks of a Ready service (drift " ..
                         "reverted, a lost pod or object seen and healed)" },
    allow_chart_networks = { type = "string", default = "",
                             description = "networks (CIDRs, comma-separated) a chart " ..
                               "repository may be on besides public addresses" },
    index_ttl = { type = "number", default = 30,
                  description = "seconds a chart repository's index.yaml is used again" },
    deadline = { type = "number", default = 600,
                 description = "seconds a change may take to become healthy when the spec " ..
                   "sets no progressDeadlineSeconds" },
    openstack_health = { type = "number", default = 0,
                         description = "seconds between reads of the service's health from " ..
                           "OpenStack itself (its API, Nova's os-services, Neutron's agents) " ..
                           "through the operator's cloud, once Ready (0: never)" },
    crashloop_restarts = { type = "number", default = 5,
                           description = "restarts after which a crash-looping pod is " ..
                             "reported and deleted (0: never)" },
  }
end


-- What the failure of a release is, naming the Job or the pod and its message.
local function failure_detail(def, obj, r, comps, deps)
  local ns = obj.metadata.namespace
  local job = tostring(r.message or ""):match("^hook Job/([%w.-]+):")
  if job then
    local pod = health.job_pod(ns, job)
    return "Job " .. job .. " failed" .. (pod and (" (" .. pod .. ")") or "") .. ": " ..
      tostring(r.message)
  end
  for _, c in ipairs(def.components) do
    local comp = comps[c]
    if comp and not comp.upToDate and deps[c] then
      local pod = health.deployment_pod(deps[c])
      return "component " .. c .. " (Deployment " .. deps[c].metadata.name .. ") is not healthy: " ..
        tostring(comp.message) .. (pod and ("; " .. pod) or "")
    end
  end
  return tostring(r.message)
end


-- Apply the release (or, after a failure of this generation with rollbackOnFailure, its
-- last healthy revision) and report. A Job that fails or a change not healthy within the
-- deadline is a failure of the generation: it is not retried until the spec changes.
function _M.applied(def, obj, ctx, tbl, base, upgrading)
  local spec, st = obj.spec or {}, obj.status or {}
  local gen = obj.metadata.generation or 0
  local now = time.now()
  local rollback_on = spec.rollbackOnFailure ~= false
  local deadline = spec.progressDeadlineSeconds or ctx.config.deadline
  local attempt = st.attempt
  if type(attempt) ~= "table" or attempt.generation ~= gen then
    -- ready = false, not left out: the status is merged into the old one, and an older
    -- generation's ready = true would survive into this attempt.
    attempt = { generation = gen, since = now, ready = false }
  end
  local failure = st.failure
  if type(failure) ~= "table" or failure.generation ~= gen then failure = nil end
  base.attempt = attempt
  base.lastGoodRevision, base.lastGoodVersion = st.lastGoodRevision, st.lastGoodVersion
  local rollback_to = failure and rollback_on and st.lastGoodRevision or nil
  local src = chart.source(spec.chart, def.chart, ctx.config.charts_dir)
  local function run(to)
    return release.apply{
      chart = src.chart, repo = src.repo, version = src.version, digest = src.digest,
      allow = ctx.config.allow_chart_networks, index_ttl = ctx.config.index_ttl,
      values = _M.values(def, spec, tbl, ctx.config),
      name = obj.metadata.name, namespace = obj.metadata.namespace, owner = obj,
      event = ctx.event, rollback_to = to,
    }
  end
  -- Whether the release has written its state (something to tear down on deletion): once
  -- true, kept; nothing written when the chart or values were refused, or when the state
  -- Secret could not be read or written (Forbidden: no kupenstack-services binding).
  local function released(r, err)
    if st.released or st.revision ~= nil then return true end
    if r then return not r.refused end
    return not tostring(err):match("the release's state: .*[Ff]orbidden")
  end
  if failure and not rollback_to then
    -- Halted, nothing to go back to: report, apply nothing more until the spec changes.
    base.failure, base.phase, base.message = failure, "Degraded", failure.message
    base.components, base.ready, base.revision = st.components, st.ready, st.revision
    return _M.report(def, obj, base, "Failed", failure.message, upgrading, ctx)
  end
  local r, err = run(rollback_to)
  base.released = released(r, err) or nil
  if not r or r.refused then
    -- Nothing applied: the chart refused (a digest that does not match, a repository that
    -- does not answer) is retried with backoff, naming what differs.
    local f = _M.failed(r and "ChartRefused" or "ApplyFailed", tostring(r and r.message or err),
                        false,
                        { wantedVersion = spec.version, version = st.version, attempt = attempt,
                          failure = failure or (st.failure ~= nil and json.null or nil),
                          lastGoodRevision = st.lastGoodRevision,
                          lastGoodVersion = st.lastGoodVersion, released = base.released })
    return f
  end
  base.chartDigest = r.chart_digest
  local comps, n, deps = {}, 0, {}
  if r.phase ~= "Failed" or r.revision then
    comps, n, deps = components(def, obj)
    if not comps then return nil, n end
  end
  -- A new failure of this generation: a Job failed, or the deadline passed before it was
  -- ever Ready. Once Ready (attempt.ready), a moment not Ready (a pod deleted, a host
  -- restarted long after the install that finds a hook Job re-made) is healed, not an
  -- upgrade that failed: it is not rolled back.
  if r.phase == "Ready" and not attempt.ready then
    attempt = { generation = attempt.generation, since = attempt.since, ready = true }
    base.attempt = attempt
  end
  if not failure and (r.phase == "Failed" or (r.phase ~= "Ready" and not attempt.ready
                                              and now - (attempt.since or now) > deadline)) then
    local why = r.phase == "Failed" and "" or ("not healthy within " .. deadline .. "s: ")
    local msg = (upgrading and ("upgrade to " .. spec.version .. " failed: ") or "") ..
      why .. failure_detail(def, obj, r, comps, deps)
    failure = { generation = gen, message = msg, at = now,
                rollbackTo = rollback_on and st.lastGoodRevision or nil,
                rollbackVersion = rollback_on and st.lastGoodVersion or nil }
    base.failure = failure
    ctx.event("Warning", "Failed", msg)
    ctx.log.info("service failed", { message = msg })
    if rollback_on and st.lastGoodRevision then
      ctx.event("Warning", "RollingBack", "rolling back to revision " .. st.lastGoodRevision ..
        " (" .. tostring(st.lastGoodVersion) .. ")")
      r, err = run(st.lastGoodRevision)
      if not r then return nil, err end
      comps, n, deps = components(def, obj)
      if not comps then return nil, n end
    else
      base.components, base.ready = comps, n .. "/" .. #def.components
      base.revision, base.phase, base.message = r.revision or st.revision, "Degraded", msg
      return _M.report(def, obj, base, "Failed", msg, upgrading, ctx)
    end
  end
  -- The status is merged into the old one: a failure of an older generation is taken out
  -- (null), not left stale beside a healthy phase.
  base.failure = failure or (st.failure ~= nil and json.null or nil)
  -- Pods crash-looping past the threshold: reported and restarted.
  local loops = {}
  if r.phase ~= "Ready" then
    for _, c in ipairs(def.components) do
      if deps[c] then
        local got, lerr = health.restart_crashlooping(deps[c], ctx.config.crashloop_restarts)
        if not got then return nil, lerr end
        for _, l in ipairs(got) do
          l.component = c
          loops[#loops + 1] = l
          ctx.event("Warning", "CrashLoopRestarted", "pod " .. l.pod .. " of " .. c ..
            " restarted " .. l.restarts .. " times, deleted: " .. tostring(l.message))
        end
      end
    end
  end
  if #loops > 0 then
    base.crashLoops = loops
  elseif r.phase == "Ready" and st.crashLoops ~= nil then
    base.crashLoops = json.null -- healthy again: the old reports go
  end
  base.components = comps
  base.ready = n .. "/" .. #def.components
  base.revision = r.revision or st.revision
  base.message = r.message
  if r.phase == "Ready" then
    base.lastGoodRevision = r.revision
    base.version = failure and (failure.rollbackVersion or base.version) or spec.version
    base.lastGoodVersion = base.version
    base.phase = failure and "RolledBack" or "Ready"
  else
    base.phase = r.phase == "Failed" and "Degraded" or
      (failure and "RollingBack" or (upgrading and "Upgrading" or "Progressing"))
  end
  if failure then
    base.message = failure.message .. "; " .. (r.phase == "Ready" and "rolled back" or
      "rolling back") .. " to revision " .. tostring(failure.rollbackTo) .. " (" ..
      tostring(failure.rollbackVersion) .. ")" ..
      (r.phase ~= "Ready" and (": " .. tostring(r.message)) or "")
    return _M.report(def, obj, base, "RolledBack", base.message, upgrading, ctx)
  end
  ctx.log.info("service applied", { phase = base.phase, release = r.progress, writes = r.writes })
  if #loops > 0 and r.phase ~= "Failed" then
    local l = loops[1]
    return _M.report(def, obj, base, "CrashLoop", "pod " .. l.pod .. " of " .. l.component ..
      " crash-looped (" .. l.restarts .. " restarts), deleted: " .. tostring(l.message),
      upgrading, ctx, r.phase)
  end
  return _M.report(def, obj, base, r.phase, r.message, upgrading, ctx)
end


-- The result of a reconcile: status base and the conditions of how (Ready, Progressing,
-- Failed, RolledBack or CrashLoop) with msg. phase: the release's, with CrashLoop.
function _M.report(def, obj, base, how, msg, upgrading, ctx, phase)
  local spec = obj.spec or {}
  local ready = how == "Ready"
  local degraded = how == "Failed" or how == "RolledBack" or how == "CrashLoop"
  local progressing = how == "Progressing" or (how == "CrashLoop" and phase ~= "Ready")
  local reason = ready and "Ready" or (how == "Progressing" and "Applying" or how)
  local up = upgrading and progressing
  return {
    status = base,
    conditions = {
      cond("Ready", ready, ready and "Ready" or reason,
           ready and ("all " .. #def.components .. " components ready at " .. spec.version) or msg),
      cond("Progressing", progressing, progressing and "Applying" or reason, msg),
      cond("Degraded", degraded, degraded and reason or "Healthy", degraded and msg or "healthy"),
      cond("UpgradeInProgress", up, up and "Upgrading" or
             ((upgrading and degraded) and reason or "NoUpgrade"),
           up and ("upgrading " .. tostring(base.version) .. " -> " .. spec.version .. ": " ..
                   tostring(msg)) or ((upgrading and degraded) and msg or "no upgrade")),
    },
    -- Ready, it is looked at again every check_interval: the host does not watch what a
    -- release applied (the operator may read Deployments only where it was granted
    -- kupenstack-services, not cluster-wide), and a lost pod or an object edited or
    -- deleted by hand is seen and healed there.
    requeue_after = (not ready) and ctx.config.poll * (degraded and 5 or 1) or
      ctx.config.check_interval,
  }
end


local function forbidden(err)
  return (type(err) == "table" and err.code == 403) or tostring(err):match("[Ff]orbidden") ~= nil
end


-- The ClusterRole and RoleBinding the operator's ServiceAccount needs in a service's
-- namespace (deploy/rbac.yaml).
_M.BINDING = "kupenstack-services"


-- Deletion of a service whose release the operator may not touch (Forbidden: no
-- kupenstack-services RoleBinding in the namespace). A release that never wrote its state
-- applied nothing: the finalizer goes. Otherwise the deletion waits for the binding, said
-- on the conditions and in a Warning Event, and is tried again every 5 polls.
function _M.deletion_forbidden(obj, ctx, err)
  local st, ns = obj.status or {}, obj.metadata.namespace
  local why = require("ks.release.util").truncate(tostring(type(err) == "table" and
    (err.message or err.reason) or err), 300)
  if not (st.released or st.revision ~= nil or st.lastGoodRevision ~= nil) then
    ctx.log.info("service deleted: its release applied nothing", { error = why })
    return {}
  end
  local msg = "cannot delete what the release applied: the operator's ServiceAccount " ..
    "needs the RoleBinding " .. _M.BINDING .. " (ClusterRole " .. _M.BINDING .. ") in " ..
    "namespace " .. ns .. "; the deletion completes once it is there (" .. why .. ")"
  ctx.event("Warning", "DeletionBlocked", msg)
  return {
    status = { phase = "DeletionBlocked", message = msg },
    conditions = {
      cond("Ready", false, "DeletionBlocked", msg),
      cond("Progressing", true, "DeletionBlocked", msg),
      cond("Degraded", true, "DeletionBlocked", msg),
    },
    requeue_after = ctx.config.poll * 5,
  }
end


-- The plugin table of a service kind.
function _M.kind(def)
  local P = {
    api = 1, group = _M.GROUP, version = _M.VERSION, kind = def.kind,
    finalizer = "kupenstack.io/service", concurrency = 2,
    limits = { seconds = 180 }, config_schema = config_schema(),
  }

  function P.reconcile(obj, ctx)
    local o = {}
    for k, v in pairs(obj) do o[k] = v end
    o.spec = _M.without_nulls(obj.spec)
    obj = o
    local spec = obj.spec
    local st = obj.status or {}
    local tbl, terr = _M.releases(ctx.config)
    if not tbl then return _M.failed("InvalidConfiguration", terr, true) end
    local bad = _M.check(def, spec, tbl)
    if bad then return _M.failed("InvalidConfiguration", bad, true) end
    local running = st.version
    local upgrading = running ~= nil and running ~= spec.version
    local base = { wantedVersion = spec.version, version = running }
    if spec.paused then
      base.phase = "Paused"
      return { status = base, conditions = {
        cond("Progressing", false, "Paused", "spec.paused is set: nothing is applied"),
      } }
    end
    local why, derr = waiting_for(def, obj, spec.version)
    if derr then return nil, derr end
    if why then
      base.phase = upgrading and "UpgradePending" or "Waiting"
      return {
        status = base,
        conditions = {
          cond("Ready", false, "WaitingForDependency", "waiting: " .. why),
          cond("Progressing", true, "WaitingForDependency", "waiting: " .. why),
          cond("Degraded", false, "WaitingForDependency", "waiting: " .. why),
          cond("UpgradeInProgress", upgrading, upgrading and "WaitingForDependency" or "NoUpgrade",
               upgrading and ("upgrade to " .. spec.version .. " waits: " .. why) or "no upgrade"),
        },
        requeue_after = ctx.config.poll,
      }
    end
    local out, err = _M.applied(def, obj, ctx, tbl, base, upgrading)
    if out and def.openstack and (ctx.config.openstack_health or 0) > 0 and
        out.status.phase == "Ready" then
      local cloud, cerr = require("ks.resource.cloud").operator()
      if cloud and spec.region then cloud = openstack_health.in_region(cloud, spec.region) end
      out = openstack_health.add(out, def.kind, def.openstack, cloud, cerr,
                                 ctx.config.openstack_health)
    end
    return out, err
  end

  function P.finalize(obj, ctx)
    local done, err = release.delete{ name = obj.metadata.name, namespace = obj.metadata.namespace }
    if done == nil and forbidden(err) then return _M.deletion_forbidden(obj, ctx, err) end
    if done == nil then return nil, err end
    if not done then return { requeue_after = ctx.config.poll } end
    return {}
  end

  return P
end


return _M
