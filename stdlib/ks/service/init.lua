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
-- merged last), chart (a chart of the operator's charts directory), paused.
--
-- Ordering: before it applies anything, a service waits until each component it depends
-- on is ready at the version it wants itself (per component, not per whole service). A
-- dependency of kind K is the object named PREFIX .. lower(K) of the namespace, where
-- PREFIX is "<controlplane>-" for a service a ControlPlane owns (its label
-- kupenstack.io/controlplane), else "" (a lone Keystone is named "keystone").
--
-- Status: phase, version (the one running, set once the release is Ready at it),
-- wantedVersion, revision, ready ("x/y" components), components.<c> = {ready = "x/y",
-- upToDate}, conditions Ready, Progressing, Degraded, UpgradeInProgress.
local kube = require "ks.core.kube"
local yaml = require "ks.core.yaml"
local release = require "ks.release"
local readiness = require "ks.release.readiness"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

_M.GROUP = "kupenstack.io"
_M.VERSION = "v1alpha1"

-- The release table: an OpenStack release -> the tag of OpenStack-Helm's images, and
-- optionally whole image references by "<chart>.<image key>". The operator extends or
-- overrides it with the setting `releases` (a YAML mapping of the same shape).
_M.RELEASES = {
  ["2023.1"] = { tag = "2023.1-ubuntu_jammy" },
  ["2023.2"] = { tag = "2023.2-ubuntu_jammy" },
  ["2024.1"] = { tag = "2024.1-ubuntu_jammy" },
  ["2024.2"] = { tag = "2024.2-ubuntu_jammy" },
}


local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end


local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end


-- b merged into a (a copy): tables key by key, anything else replaced.
function _M.merge(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or b[1] ~= nil then return copy(b) end
  local out = copy(a)
  for k, v in pairs(b) do
    if type(v) == "table" and type(out[k]) == "table" and v[1] == nil then
      out[k] = _M.merge(out[k], v)
    else
      out[k] = copy(v)
    end
  end
  return out
end


-- The release table with the operator's additions (config `releases`), or nil, err.
function _M.releases(config)
  local extra = config and config.releases
  if not extra or extra == "" then return _M.RELEASES end
  local t, err = yaml.decode(extra)
  if type(t) ~= "table" then
    return nil, "setting 'releases' must be a YAML mapping of release -> {tag=, images=}: " ..
      tostring(err or "not a mapping")
  end
  local out = copy(_M.RELEASES)
  for name, r in pairs(t) do
    if type(r) ~= "table" or (r.tag ~= nil and type(r.tag) ~= "string") then
      return nil, "setting 'releases': release '" .. tostring(name) .. "' needs a string 'tag'"
    end
    out[tostring(name)] = _M.merge(out[tostring(name)] or {}, r)
  end
  return out
end


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
  for _, kind in ipairs(sorted_keys(def.depends or {})) do
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


local function is_int(n)
  return type(n) == "number" and n >= 0 and n == math.floor(n)
end


-- The spec checked: a message naming the field, or nil.
function _M.check(def, spec, table_)
  if type(spec.version) ~= "string" or spec.version == "" then
    return "spec.version must name an OpenStack release (one of " ..
      table.concat(sorted_keys(table_), ", ") .. ")"
  end
  if not table_[spec.version] then
    return "spec.version: unknown release '" .. spec.version .. "' (the release table has " ..
      table.concat(sorted_keys(table_), ", ") .. "; the operator adds more with the setting 'releases')"
  end
  local comps = {}
  for _, c in ipairs(def.components) do comps[c] = true end
  for c, n in pairs(spec.replicas or {}) do
    if not comps[c] then
      return "spec.replicas." .. tostring(c) .. ": " .. def.kind .. " has no such component (" ..
        table.concat(def.components, ", ") .. ")"
    end
    if not is_int(n) then
      return "spec.replicas." .. c .. " must be a whole number >= 0"
    end
  end
  local images = {}
  for _, c in ipairs(def.components) do images[c] = true end
  for _, j in ipairs(def.jobs or {}) do images[j] = true end
  for c, ref in pairs(spec.images or {}) do
    if not images[c] then
      return "spec.images." .. tostring(c) .. ": " .. def.kind .. " has no such image"
    end
    if type(ref) ~= "string" or ref == "" then
      return "spec.images." .. c .. " must be an image reference"
    end
  end
  for _, f in ipairs({ "conf", "endpoints", "values" }) do
    if spec[f] ~= nil and (type(spec[f]) ~= "table" or spec[f][1] ~= nil) then
      return "spec." .. f .. " must be a mapping"
    end
  end
  return nil
end


-- The chart's values for spec: images from the release table (or spec.images), replicas,
-- conf, endpoints, then the raw values over all of it.
function _M.values(def, spec, table_, config)
  local rel = table_[spec.version]
  local registry = spec.imageRegistry or config.registry
  local tags = {}
  local keys = {}
  for _, c in ipairs(def.components) do keys[#keys + 1] = c end
  for _, j in ipairs(def.jobs or {}) do keys[#keys + 1] = j end
  for _, k in ipairs(keys) do
    local images = rel.images or {}
    tags[k] = (spec.images or {})[k] or images[def.chart .. "." .. k] or
      (registry .. "/" .. ((def.images or {})[k] or def.chart) .. ":" .. rel.tag)
  end
  local v = { images = { tags = tags } }
  if spec.replicas then v.pod = { replicas = copy(spec.replicas) } end
  if spec.conf then v.conf = copy(spec.conf) end
  if spec.endpoints then v.endpoints = copy(spec.endpoints) end
  if spec.values then v = _M.merge(v, spec.values) end
  return v
end


-- The chart's path: a plain name inside charts_dir, never a path of the user's choosing.
local function chart_of(def, spec, ctx)
  local c = spec.chart or def.chart
  if type(c) ~= "string" or not c:match("^[%w][%w._-]*$") or c:find("..", 1, true) then
    ctx.terminal("spec.chart must name a chart of the operator's charts directory",
                 "InvalidConfiguration")
  end
  return ctx.config.charts_dir .. "/" .. c
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
  local out, ready = {}, 0
  for i, c in ipairs(def.components) do
    local d = got[i].object
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
  return out, ready
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
    local spec = obj.spec or {}
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
    local r, err = release.apply{
      chart = chart_of(def, spec, ctx), values = _M.values(def, spec, tbl, ctx.config),
      name = obj.metadata.name, namespace = obj.metadata.namespace, owner = obj,
      event = ctx.event,
    }
    if not r then
      return _M.failed("ApplyFailed", tostring(err), false,
                       { wantedVersion = spec.version, version = running })
    end
    local comps, n = {}, 0
    if r.phase ~= "Failed" or r.revision then
      comps, n = components(def, obj)
      if not comps then return nil, n end
    end
    base.components = comps
    base.ready = n .. "/" .. #def.components
    base.revision = r.revision or st.revision
    base.message = r.message
    if r.phase == "Ready" then
      base.version = spec.version
      base.phase = "Ready"
    else
      base.phase = r.phase == "Failed" and "Degraded" or (upgrading and "Upgrading" or "Progressing")
    end
    ctx.log.info("service applied", { phase = base.phase, release = r.progress, writes = r.writes })
    local ready = r.phase == "Ready"
    local failed = r.phase == "Failed"
    return {
      status = base,
      conditions = {
        cond("Ready", ready, ready and "Ready" or (failed and "Failed" or "Progressing"),
             ready and ("all " .. #def.components .. " components ready at " .. spec.version)
               or r.message),
        cond("Progressing", not ready and not failed, ready and "Ready" or
               (failed and "Failed" or "Applying"), r.message),
        cond("Degraded", failed, failed and "Failed" or "Healthy", failed and r.message or "healthy"),
        cond("UpgradeInProgress", upgrading and not ready,
             (upgrading and not ready) and "Upgrading" or "NoUpgrade",
             (upgrading and not ready) and ("upgrading " .. running .. " -> " .. spec.version ..
                                             ": " .. tostring(r.message)) or "no upgrade"),
      },
      requeue_after = (not ready) and ctx.config.poll * (failed and 5 or 1) or nil,
    }
  end

  function P.finalize(obj, ctx)
    local done, err = release.delete{ name = obj.metadata.name, namespace = obj.metadata.namespace }
    if done == nil then return nil, err end
    if not done then return { requeue_after = ctx.config.poll } end
    return {}
  end

  return P
end


return _M
