-- ks/release: a Helm chart deployed as a release, declared, applied and kept, the way
-- `helm upgrade --install` would do it and better where Helm fails operators. Service
-- plugins call it with (chart, values, release name, namespace):
--
--   local release = require "ks.release"
--   local r = release.apply{ chart = "/charts/keystone", values = {...}, name = "keystone",
--                            namespace = obj.metadata.namespace, owner = obj,
--                            event = ctx.event, pins = { ["secrets.key"] = 32 },
--                            rollback_to = nil, dry_run = false, concurrency = 4 }
--   -- or a chart of a repository (Helm's index.yaml), pinned by its content's SHA-256
--   -- (spec.digest, else the digest seen first), fetched only from public addresses or
--   -- the networks the operator allows (ks.release.source):
--   release.apply{ repo = "https://charts.example/", chart = "keystone", version = "0.3.1",
--                  digest = "sha256:...", allow = settings.allow_chart_networks, ... }
--   r = { phase = "Ready"|"Progressing"|"Failed", ready = 3, total = 5,
--         progress = "3/5 ready", message = "waiting for Deployment/keystone-api: ...",
--         revision = 2, writes = 0, plan = {...} (dry run), nondeterministic = {...},
--         chart_digest = "sha256:<hex>" (a repository's .tgz, or a local chart's: host/chart.h),
--         refused = true (the values or the chart refused: nothing applied nor recorded) }
--   local done, err = release.delete{ name =, namespace =, run_pre_delete = true }
--
-- The parts: source (the chart and its content digest), render (ks.core.helm and the
-- determinism check, here), revision (the values with their pins, the history), fit
-- (discovery, version fallbacks, namespace confinement), apply (one object), inventory
-- (what was applied, the prune), hooks, readiness, state (the inventory, history, hook runs
-- and pins, in a Secret of the release).
local fault = require "ks.core.fault"
local helm = require "ks.core.helm"
local kube = require "ks.core.kube"
local apply = require "ks.release.apply"
local fit = require "ks.release.fit"
local hooks = require "ks.release.hooks"
local inventory = require "ks.release.inventory"
local readiness = require "ks.release.readiness"
local revision = require "ks.release.revision"
local source = require "ks.release.source"
local state = require "ks.release.state"
local util = require "ks.release.util"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

-- The order Helm installs kinds in; kinds not named go after, workloads last.
local ORDER = {
  "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget", "ServiceAccount",
  "Secret", "ConfigMap", "PersistentVolumeClaim", "Role", "RoleBinding", "Service",
  "DaemonSet", "Pod", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet",
  "Job", "CronJob", "Ingress",
}
local RANK = {}
for i, k in ipairs(ORDER) do RANK[k] = i end
-- Long-running workloads and Jobs: applied after the post-install/upgrade hook Jobs ran.
local WORKLOAD = { DaemonSet = true, Pod = true, ReplicaSet = true, Deployment = true,
                   StatefulSet = true, Job = true, CronJob = true,
                   HorizontalPodAutoscaler = true }


local function rank(obj)
  return RANK[obj.kind] or 15
end


local function install_order(a, b)
  if rank(a) ~= rank(b) then return rank(a) < rank(b) end
  return util.key(a) < util.key(b)
end


local function labels_of(spec)
  return { ["app.kubernetes.io/managed-by"] = "kupenstack",
           ["kupenstack.io/release"] = spec.name }
end


-- Trace obj to its release: labels and an annotation.
local function mark(obj, spec)
  local md = obj.metadata
  md.labels = md.labels or {}
  for k, v in pairs(labels_of(spec)) do md.labels[k] = v end
  md.annotations = md.annotations or {}
  md.annotations["kupenstack.io/release"] = spec.namespace .. "/" .. spec.name
end


-- Render the chart at path (source.resolve's) with values.
local function render(spec, path, values, salt)
  local v = values
  if salt then
    v = util.canonical(values)
    v = require("ks.core.json").decode(v)
    v.__kupenstack_render_check = salt
  end
  local objs, err = helm.render(path, v, { release = spec.name,
                                                  namespace = spec.namespace,
                                                  timeout = spec.timeout })
  if not objs then
    source.forget(path)
    return nil, "could not render " .. tostring(spec.chart) .. ": " ..
      util.truncate(tostring(err))
  end
  return objs
end


-- The objects and fields in which two renders differ: { "Secret/x .stringData.key" }.
-- Pre-install hooks are not compared: they are created once and never rewritten.
local function compare_renders(a, b)
  local by = {}
  for _, o in ipairs(b) do by[util.key(o)] = o end
  local out = {}
  for _, o in ipairs(a) do
    local h = hooks.of(o)
    if not (h and h.events["pre-install"]) then
      for _, p in ipairs(util.diff_paths(o, by[util.key(o)] or {}, 5)) do
        out[#out + 1] = util.name(o) .. " " .. p
      end
    end
  end
  return out
end


local function result(phase, r, message)
  r.phase = phase
  r.message = message
  r.progress = (r.ready or 0) .. "/" .. (r.total or 0) .. " ready"
  return r
end


local function new_ctx(spec, st)
  return { writes = 0, plan = spec.dry_run and {} or nil, event = spec.event,
           applied = {}, st = st, concurrency = spec.concurrency or 4 }
end


-- Put each of objs (up to spec.concurrency at once); records them in ctx.applied; returns
-- the live objects in the order of objs, or nil, err.
local function put_all(objs, ctx)
  local idx = inventory.index(ctx.st.inventory)
  ctx.drift, ctx.changed = {}, {}
  for _, obj in ipairs(objs) do
    local prev = ctx.st.inventory[idx[obj.kind .. "/" .. obj.metadata.name] or 0]
    if prev ~= nil and prev.d == util.digest(obj) then ctx.drift[util.key(obj)] = true end
    if prev ~= nil and prev.d ~= nil and prev.d ~= util.digest(obj) then
      ctx.changed[util.key(obj)] = true
    end
  end
  local lives, err = apply.put_many(objs, ctx)
  if not lives then return nil, err end
  for i, obj in ipairs(objs) do
    ctx.applied[#ctx.applied + 1] = { obj = obj, live = lives[i] }
  end
  return lives
end


-- Run the post-install/upgrade hook Jobs due, by weight, each once per declaration:
-- true when all ran, or false, "waiting"|"failed", message.
local function run_post_hooks(post, ctx)
  for _, item in ipairs(post) do
    local obj, h = item.obj, item.hook
    if hooks.due(item, ctx.st.installed) or (ctx.st.hooks[util.name(obj)] ~= nil) then
      local d = util.digest(obj)
      local run = ctx.st.hooks[util.name(obj)]
      if not (run and run.d == d and run.done) then
        local live, err = apply.put(obj, ctx)
        if not live then return false, "failed", err end
        ctx.applied[#ctx.applied + 1] = { obj = obj, live = live, hook = true }
        if ctx.plan then goto next_hook end -- planned by put(); a dry run goes on
        ctx.st.hooks[util.name(obj)] = { d = d, done = false }
        do
          local e = inventory.entry(obj, live)
          e.hook = true
          local inv = ctx.st.inventory
          inv[inventory.index(inv)[obj.kind .. "/" .. obj.metadata.name] or #inv + 1] = e
        end
        local state_of, msg = readiness.of(live)
        if state_of == "failed" then
          if h.delete["hook-failed"] then apply.remove(inventory.entry(obj, live), obj.metadata.namespace, ctx) end
          return false, "failed", "hook " .. util.name(obj) .. ": " .. msg
        elseif state_of == "waiting" then
          return false, "waiting", "waiting for hook " .. util.name(obj) .. ": " .. msg
        end
        ctx.st.hooks[util.name(obj)] = { d = d, done = true }
        if h.delete["hook-succeeded"] then
          local ok, rerr = apply.remove(inventory.entry(obj, live), obj.metadata.namespace, ctx)
          if not ok then return false, "failed", rerr end
        end
      end
    end
    ::next_hook::
  end
  return true
end


local POD = { version = "v1", kind = "Pod" }
local HAS_PODS = { Deployment = true, StatefulSet = true, DaemonSet = true }


-- Why live's pods are not ready (" (pod x container y: CrashLoopBackOff: ...)"), from the
-- pods the plugin's cache holds (it watches Pods: kube.list; else "").
local function pods_say(live)
  local sel = (((live.spec or {}).selector) or {}).matchLabels
  if not HAS_PODS[live.kind] or type(sel) ~= "table" or next(sel) == nil then return "" end
  local ok, pods = pcall(kube.list, POD, { namespace = live.metadata.namespace, labels = sel })
  if not ok or type(pods) ~= "table" then return "" end
  local why = readiness.pod_problem(pods, 300)
  return why and (" (" .. why .. ")") or ""
end


-- Readiness of the applied plain objects: ready count, total, first waiting, first failed
-- (a workload's with what its pods say).
local function roll_up(applied)
  local ready, total, waiting, failed = 0, 0, nil, nil
  for _, a in ipairs(applied) do
    if not a.hook then
      total = total + 1
      local s, msg = readiness.of(a.live)
      if s == "ready" then
        ready = ready + 1
      elseif s == "failed" then
        failed = failed or (util.name(a.obj) .. ": " .. msg .. pods_say(a.live))
      else
        waiting = waiting or ("waiting for " .. util.name(a.obj) .. ": " .. msg ..
                              pods_say(a.live))
      end
    end
  end
  return ready, total, waiting, failed
end


local function check_spec(spec)
  for _, f in ipairs({ "chart", "name", "namespace" }) do
    if type(spec[f]) ~= "string" or spec[f] == "" then
      error("ks.release: spec." .. f .. " must be a non-empty string", 3)
    end
  end
end


-- Apply a release (see the top of this file). Returns the report, or nil, err.
function _M.apply(spec)
  check_spec(spec)
  local r = { writes = 0 }
  local st, err = state.load(spec.namespace, spec.name)
  if not st then return nil, err end
  -- refused: nothing was applied nor recorded (the values or the chart are refused).
  local values, verr = revision.values(spec, st)
  if not values then
    r.refused = true
    return result("Failed", r, verr)
  end
  -- A rollback re-applies the revision: its values, and its chart's content.
  local rev = spec.rollback_to and revision.get(st, spec.rollback_to)
  local src = revision.source(spec, rev)
  local path, content = source.resolve(src, st)
  if not path then
    r.refused = true
    return result("Failed", r, content)
  end
  if rev and rev.chart and content ~= rev.chart then
    r.refused = true
    return result("Failed", r, "cannot roll back to revision " .. rev.revision .. ": its "
      .. "chart " .. src.chart .. " had content " .. rev.chart .. ", and now has "
      .. content .. "; nothing applied")
  end
  r.chart_digest = content
  local objs, rerr = render(spec, path, values)
  if not objs then return nil, rerr end
  local last = st.history[#st.history]
  -- A revision is its chart's content, its values and its render.
  local key = util.digest({ chart = content, values = values, render = util.canonical(objs) })
  if last and last.key == key then
    r.nondeterministic = last.nd
  else
    local again, aerr = render(spec, path, values, key)
    if not again then return nil, aerr end
    local diffs = compare_renders(objs, again)
    if #diffs > 0 then
      r.nondeterministic = diffs
      if spec.event then
        spec.event("Warning", "NondeterministicRender", "two renders of the same inputs " ..
          "differ: " .. util.truncate(table.concat(diffs, ", "), 400))
      end
    end
  end
  local fitted, ferr = fit.fit(objs, spec.namespace)
  if not fitted then return result("Failed", r, ferr) end
  local parts = hooks.split(fitted)
  for _, o in ipairs(fitted) do mark(o, spec) end
  table.sort(parts.plain, install_order)
  local ctx = new_ctx(spec, st)
  local labels = labels_of(spec)

  -- The inventory first holds every object about to be applied (as well as the old
  -- ones): an apply cut short (the host killed) leaves nothing that is not listed.
  local idx = inventory.index(st.inventory)
  local keep = {}
  for _, o in ipairs(parts.plain) do
    local k = o.kind .. "/" .. o.metadata.name
    keep[k] = true
    if not idx[k] then
      st.inventory[#st.inventory + 1] = { apiVersion = o.apiVersion, kind = o.kind,
                                          name = o.metadata.name }
    end
  end
  for _, item in ipairs(parts.post) do
    local o, k = item.obj, item.obj.kind .. "/" .. item.obj.metadata.name
    if not idx[k] and not keep[k] then
      st.inventory[#st.inventory + 1] = { apiVersion = o.apiVersion, kind = o.kind,
                                          name = o.metadata.name, hook = true }
    end
    keep[k] = true
  end
  if not ctx.plan then
    local n, serr = state.save(spec.namespace, spec.name, st, spec.owner, labels)
    if not n then return nil, serr end
    ctx.writes = ctx.writes + n
  end

  -- Pre-install objects: created once, never overwritten; the ones this release created
  -- join its inventory (and go with it), one that was there before is not its own.
  for _, item in ipairs(parts.pre_install) do
    local o = item.obj
    local k = o.kind .. "/" .. o.metadata.name
    keep[k] = true
    local live, created = apply.create_absent(o, ctx)
    if not live then return nil, created end
    if created then
      local e = inventory.entry(o, live)
      e.hook = true
      local i = inventory.index(st.inventory)[k]
      st.inventory[i or #st.inventory + 1] = e
      local n, serr = state.save(spec.namespace, spec.name, st, spec.owner, labels)
      if not n then return nil, serr end
      ctx.writes = ctx.writes + n
    end
  end
  local config, workloads = {}, {}
  for _, o in ipairs(parts.plain) do
    if WORKLOAD[o.kind] then workloads[#workloads + 1] = o else config[#config + 1] = o end
  end
  local _, cerr = put_all(config, ctx)
  if cerr then return nil, cerr end
  -- A crash point (host/fault.h) for the tests: the configuration applied, nothing
  -- recorded of it since the inventory's first write.
  fault.point(spec.owner and spec.owner.kind, "release-config-applied-" .. spec.name)
  local ok, how, msg = run_post_hooks(parts.post, ctx)
  r.writes = ctx.writes
  r.ready, r.total = #config, #parts.plain -- the workloads wait for the hooks
  if not ok then
    r.plan = ctx.plan
    if not ctx.plan then
      inventory.record(ctx, st)
      state.save(spec.namespace, spec.name, st, spec.owner, labels)
    end
    return result(how == "failed" and "Failed" or "Progressing", r, msg)
  end
  local _, werr = put_all(workloads, ctx)
  if werr then return nil, werr end

  -- Every declared object is applied: record their UIDs, prune the rest, newest first.
  if not ctx.plan then inventory.record(ctx, st) end
  local left, perr = inventory.prune(ctx, spec, keep)
  if not left then return nil, perr end
  r.ready, r.total, r.waiting, r.failed = roll_up(ctx.applied)
  if not ctx.plan then
    st.inventory = left
    st.installed = true
    r.revision = revision.record(st, key, values, spec.rollback_to, r.nondeterministic,
                                 content, src)
    local n, serr = state.save(spec.namespace, spec.name, st, spec.owner, labels)
    if not n then return nil, serr end
    ctx.writes = ctx.writes + n
  else
    r.plan = ctx.plan
  end
  r.writes = ctx.writes
  if r.failed then return result("Failed", r, r.failed) end
  if r.waiting then return result("Progressing", r, r.waiting) end
  return result("Ready", r, "all " .. r.total .. " objects ready")
end


-- The release's history: { {revision=, key=, rollback_of=}... }, oldest first.
function _M.history(namespace, name)
  local st, err = state.load(namespace, name)
  if not st then return nil, err end
  return st.history
end


-- Tear a release down: its pre-delete hooks first when spec.run_pre_delete (waited for;
-- left in place, as Helm leaves them, unless their delete policy says hook-succeeded),
-- then everything its inventory holds, newest first, then its state. Returns true when
-- done, or false, message while waiting, or nil, err.
function _M.delete(spec)
  check_spec({ chart = "-", name = spec.name, namespace = spec.namespace })
  local st, err = state.load(spec.namespace, spec.name)
  if not st then return nil, err end
  local ctx, ran = new_ctx(spec, st), {}
  if spec.run_pre_delete and spec.chart and #st.history > 0 then
    local values = st.history[#st.history].values
    local path, serr = source.resolve(spec, st)
    if not path then return nil, serr end
    local objs, rerr = render(spec, path, values)
    if not objs then return nil, rerr end
    local fitted, ferr = fit.fit(objs, spec.namespace)
    if not fitted then return nil, ferr end
    for _, item in ipairs(hooks.split(fitted).pre_delete) do
      mark(item.obj, spec)
      local live, perr = apply.put(item.obj, ctx)
      if not live then return nil, perr end
      local s, msg = readiness.of(live)
      if s == "waiting" then return false, "waiting for pre-delete hook " ..
        util.name(item.obj) .. ": " .. msg end
      if s == "failed" then return nil, "pre-delete hook " .. util.name(item.obj) .. ": " .. msg end
      if item.hook.delete["hook-succeeded"] then ran[#ran + 1] = inventory.entry(item.obj, live) end
    end
  end
  for _, e in ipairs(ran) do st.inventory[#st.inventory + 1] = e end
  for i = #st.inventory, 1, -1 do
    local ok, derr = apply.remove(st.inventory[i], spec.namespace, ctx)
    if not ok then return nil, derr end
  end
  local ok, derr = state.drop(spec.namespace, spec.name)
  if not ok then return nil, derr end
  return true
end


return _M
