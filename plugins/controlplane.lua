-- plugins/controlplane.lua: kupenstack.io/v1alpha1 ControlPlane -> the service objects
-- (Keystone, Glance, Placement, Nova, Neutron) it creates and owns, named
-- "<controlplane>-<service>" and labelled kupenstack.io/controlplane. The shared settings
-- (version, imageRegistry, region, endpoints, chart's repository and version) are written
-- once and inherited; spec.services.<name> overrides them and adds replicas, conf, images,
-- values, chart (its name and digest: ks.service.chart), paused. A service left
-- out of spec.services is deleted. The order of the lifecycle is the services' own: each
-- waits until the components it depends on are ready at its version (ks.service), so an
-- install or an upgrade goes keystone -> glance, placement -> nova -> neutron. Deleting the
-- ControlPlane deletes its services in the reverse order, each gone before the next.
-- A service whose change fails (ks.service: rollbackOnFailure, progressDeadlineSeconds,
-- inherited too) halts the order: the ControlPlane is Degraded naming it
-- (status.halted) and its failing Job or pod.
local kube = require "ks.core.kube"
local service = require "ks.service"
local chart = require "ks.service.chart"
local util = require "ks.release.util"
local json = require "ks.core.json"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type

-- The documented order (install and upgrade); deletion goes backwards.
local SERVICES = {
  { name = "keystone", kind = "Keystone" },
  { name = "glance", kind = "Glance" },
  { name = "placement", kind = "Placement" },
  { name = "nova", kind = "Nova" },
  { name = "neutron", kind = "Neutron" },
}
local KNOWN = {}
for _, s in ipairs(SERVICES) do KNOWN[s.name] = s end

local function res(kind)
  return { group = service.GROUP, version = service.VERSION, kind = kind }
end

local owns = {}
for i, s in ipairs(SERVICES) do owns[i] = res(s.kind) end

local ControlPlane = {
  api = 1, group = service.GROUP, version = service.VERSION, kind = "ControlPlane",
  finalizer = "kupenstack.io/controlplane",
  owns = owns,
  config_schema = {
    poll = { type = "number", default = 2, description = "seconds between status checks" },
  },
}

-- Per service: the fields it inherits from the ControlPlane and those only it has.
local SHARED = { "version", "imageRegistry", "region", "paused", "rollbackOnFailure", "progressDeadlineSeconds",
                 "maxUnavailable" }
local OWN = { "replicas", "conf", "images", "values" }
-- What of a chart the ControlPlane's spec.chart may say (each service's chart has its own
-- name and content: its digest is set per service).
local CHART_SHARED = { repository = true, version = true }


local function child_name(cp, svc)
  return cp.metadata.name .. "-" .. svc
end


-- The service object's spec: the shared settings, the service's overrides over them.
local function child_spec(spec, o)
  local out = {}
  for _, f in ipairs(SHARED) do
    if o[f] ~= nil then out[f] = o[f] else out[f] = spec[f] end
  end
  if spec.endpoints or o.endpoints then
    out.endpoints = service.merge(spec.endpoints or {}, o.endpoints or {})
  end
  -- An empty mapping ({}) is left out: it has no JSON form of its own (it would be sent
  -- as null, which the CRD refuses).
  for _, f in ipairs(OWN) do
    if not (type(o[f]) == "table" and next(o[f]) == nil) then out[f] = o[f] end
  end
  out.chart = chart.inherit(spec.chart, o.chart)
  return out
end


local function check(spec)
  if type(spec.version) ~= "string" or spec.version == "" then
    return "spec.version must name an OpenStack release"
  end
  if type(spec.services) ~= "table" or next(spec.services) == nil then
    return "spec.services must name at least one service (keystone, glance, placement, nova, neutron)"
  end
  if spec.chart ~= nil then
    if type(spec.chart) ~= "table" or spec.chart[1] ~= nil then
      return "spec.chart must be a mapping {repository, version}"
    end
    for k in pairs(spec.chart) do
      if not CHART_SHARED[k] then
        return "spec.chart." .. tostring(k) .. ": set per service (spec.services.<name>.chart." ..
          tostring(k) .. "): each service's chart has its own name and content"
      end
    end
  end
  for name, o in pairs(spec.services) do
    if not KNOWN[name] then
      return "spec.services." .. tostring(name) ..
        ": unknown service (keystone, glance, placement, nova, neutron)"
    end
    if type(o) ~= "table" or o[1] ~= nil then
      return "spec.services." .. name .. " must be a mapping (may be empty: {})"
    end
    local field = "spec.services." .. name .. ".chart"
    local _, bad = chart.source(chart.inherit(spec.chart, o.chart), name, "", field)
    if bad then return bad end
  end
  return nil
end


local function owned_by(obj, cp)
  for _, r in ipairs(obj.metadata.ownerReferences or {}) do
    if r.uid == cp.metadata.uid then return true end
  end
  return false
end


local function cond_of(obj, ctype)
  for _, c in ipairs((obj.status or {}).conditions or {}) do
    if c.type == ctype then return c end
  end
  return nil
end


function ControlPlane.reconcile(cp, ctx)
  -- null (a mapping emptied by a server-side apply, kubernetes#104694) means absent; a
  -- service set to null means {}.
  local spec = service.without_nulls(cp.spec)
  if type(spec.services) == "table" then
    local svcs = {}
    for name, o in pairs(spec.services) do
      if o == json.null then
        svcs[name] = {}
      elseif type(o) == "table" and o[1] == nil then
        svcs[name] = service.without_nulls(o)
      else
        svcs[name] = o -- check() names it
      end
    end
    spec.services = svcs
  end
  local bad = check(spec)
  if bad then return service.failed("InvalidConfiguration", bad, true) end
  local ns = cp.metadata.namespace
  local owner = { { apiVersion = cp.apiVersion, kind = cp.kind, name = cp.metadata.name,
                    uid = cp.metadata.uid, controller = true, blockOwnerDeletion = true } }
  local summary, ready, total, degraded, halted, versions = {}, 0, 0, nil, nil, {}
  for _, s in ipairs(SERVICES) do
    local name = child_name(cp, s.name)
    local o = spec.services[s.name]
    if o then
      total = total + 1
      local want = {
        apiVersion = service.GROUP .. "/" .. service.VERSION, kind = s.kind,
        metadata = { name = name, namespace = ns, ownerReferences = owner,
                     labels = { ["kupenstack.io/controlplane"] = cp.metadata.name } },
        spec = child_spec(spec, o),
      }
      -- Written only when it differs from the cached one (both ways for the spec: a field
      -- taken out counts); then the answer of the apply, whose generation is the new one.
      local live = kube.get(res(s.kind), ns, name)
      if not live or util.differs(want, live) or util.differs(live.spec or {}, want.spec) then
        local err
        live, err = kube.apply(want, { force = true })
        if not live then return nil, "applying " .. s.kind .. "/" .. name .. ": " .. tostring(err) end
      end
      local st = live and live.status or {}
      local rc = cond_of(live, "Ready")
      local dc = cond_of(live, "Degraded")
      local wanted = (o.version or spec.version)
      local is_ready = rc and rc.status == "True" and st.version == wanted and
        (st.observedGeneration or 0) >= (live.metadata.generation or 0)
      if is_ready then ready = ready + 1 end
      versions[st.version or "none"] = true
      summary[s.name] = { phase = st.phase or "Pending", version = st.version,
                          ready = st.ready, message = rc and rc.message }
      if dc and dc.status == "True" and not degraded then
        degraded = s.kind .. "/" .. name .. ": " .. tostring(dc.message)
        halted = s.kind .. "/" .. name
      end
    else
      -- Left out of the spec: deleted if it is ours.
      local live = kube.get(res(s.kind), ns, name)
      if live and owned_by(live, cp) and not live.metadata.deletionTimestamp then
        local _, err = kube.delete(res(s.kind), ns, name, { uid = live.metadata.uid })
        if err and err.code ~= 404 then return nil, err end
      end
    end
  end
  local all = ready == total
  local running = next(versions)
  if next(versions, running) then running = nil end -- not one version everywhere
  local phase = all and "Ready" or (degraded and "Degraded" or
    ((running and running ~= spec.version and running ~= "none") and "Upgrading" or "Progressing"))
  local msg = all and ("all " .. total .. " services ready at " .. spec.version)
    or degraded or ("waiting for " .. (total - ready) .. " of " .. total .. " services")
  return {
    -- halted: the service whose failure holds the others back (each waits for what it
    -- depends on to be ready at the wanted version: the next in order never starts).
    status = { phase = phase, ready = ready .. "/" .. total, services = summary,
               version = running ~= "none" and running or nil, wantedVersion = spec.version,
               halted = halted or "" },
    conditions = {
      { type = "Ready", status = all and "True" or "False", reason = phase, message = msg },
      { type = "Progressing", status = (not all and not degraded) and "True" or "False",
        reason = phase, message = msg },
      { type = "Degraded", status = degraded and "True" or "False",
        reason = degraded and "ServiceDegraded" or "Healthy", message = degraded or "healthy" },
    },
    requeue_after = (not all) and ctx.config.poll or nil,
  }
end


-- Delete the services in the reverse order, each gone before the next is deleted.
function ControlPlane.finalize(cp, ctx)
  local ns = cp.metadata.namespace
  for i = #SERVICES, 1, -1 do
    local s = SERVICES[i]
    local name = child_name(cp, s.name)
    local live, err = kube.fetch(res(s.kind), ns, name)
    if live and owned_by(live, cp) then
      if not live.metadata.deletionTimestamp then
        local _, derr = kube.delete(res(s.kind), ns, name, { uid = live.metadata.uid })
        if derr and derr.code ~= 404 then return nil, derr end
        ctx.log.info("deleting service", { service = s.kind .. "/" .. name })
      end
      return { requeue_after = ctx.config.poll }
    elseif not live and err and err.code ~= 404 then
      return nil, err
    end
  end
  return {}
end


return ControlPlane
