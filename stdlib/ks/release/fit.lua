-- ks/release/fit.lua: what a chart rendered, fitted to the cluster it goes to. The API
-- server is asked what it serves (discovery, one group/version at a time, cached), and
-- an object of a group/version it does not serve is rewritten to one it does where the
-- object is otherwise the same (policy/v1 -> policy/v1beta1 PodDisruptionBudget, batch/v1
-- -> batch/v1beta1 CronJob, as on Kubernetes 1.20), or refused, saying why. Namespaced
-- objects get the release's namespace; an object naming another namespace, or of a
-- cluster-scoped kind, is refused: a release holds objects of its own namespace only (a
-- namespace editor must not reach beyond it through chart values). Service ports get the
-- protocol default that server-side apply on 1.20 otherwise rejects; a Secret's stringData
-- becomes data, as the API server would store it, so that a re-apply compares equal.
-- Quantities written as YAML numbers (`cpu: 0.5`) become strings: server-side apply on
-- 1.20 refuses a number there ("expected string"); util.differs then compares them with
-- the canonical form the server stores ("500m") by value.
local kube = require "ks.core.kube"
local time = require "ks.core.time"
local base64 = require "ks.base64"
local util = require "ks.release.util"

local ipairs = ipairs
local pairs = pairs
local type = type


local _M = {}

-- Seconds a discovery answer is kept.
_M.TTL = 300

-- By group/version: { at = monotonic, kinds = { [Kind] = { name=, namespaced= } } }, or
-- { at =, served = false }.
local served = {}


-- What the cluster serves of gv: { [Kind] = {name=, namespaced=} }, false when it does
-- not serve gv, or nil, err.
function _M.discover(gv)
  local now = time.monotonic()
  local c = served[gv]
  if c and now - c.at < _M.TTL then
    return c.kinds or false
  end
  local list, err = kube.discover(gv)
  if not list then
    if type(err) == "table" and err.code == 404 then
      served[gv] = { at = now }
      return false
    end
    return nil, "could not discover " .. gv .. ": " .. tostring(err)
  end
  local kinds = {}
  for _, r in ipairs(list.resources or {}) do
    if not r.name:find("/", 1, true) then
      kinds[r.kind] = { name = r.name, namespaced = r.namespaced }
    end
  end
  served[gv] = { at = now, kinds = kinds }
  return kinds
end


-- Forget what discovery said (tests; a CRD installed since).
function _M.forget()
  served = {}
end


-- Fallbacks: for a kind of a group/version the cluster may not serve, the older one to
-- try, and the fields the older one lacks (an object using one cannot be fitted).
local FALLBACK = {
  ["policy/v1 PodDisruptionBudget"] = { to = "policy/v1beta1",
                                        lacks = { "spec.unhealthyPodEvictionPolicy" } },
  ["batch/v1 CronJob"] = { to = "batch/v1beta1", lacks = { "spec.timeZone" } },
  ["autoscaling/v2 HorizontalPodAutoscaler"] = { to = "autoscaling/v2beta2", lacks = {} },
  ["networking.k8s.io/v1 Ingress"] = { to = "networking.k8s.io/v1beta1",
                                       lacks = { "spec.ingressClassName" } },
}


-- The kind info of obj on this cluster, rewriting obj.apiVersion to one served; or nil,
-- err.
local function fit_version(obj)
  local kinds, err = _M.discover(obj.apiVersion)
  if kinds == nil then return nil, err end
  if kinds and kinds[obj.kind] then
    return kinds[obj.kind]
  end
  local fb = FALLBACK[obj.apiVersion .. " " .. obj.kind]
  if fb then
    for _, f in ipairs(fb.lacks) do
      if util.at(obj, f) ~= nil then
        return nil, util.name(obj) .. " (" .. obj.apiVersion .. ") cannot be fitted to " ..
          fb.to .. ": it sets " .. f .. ", which " .. fb.to .. " lacks"
      end
    end
    local older, err2 = _M.discover(fb.to)
    if older == nil then return nil, err2 end
    if older and older[obj.kind] then
      obj.apiVersion = fb.to
      return older[obj.kind]
    end
  end
  return nil, util.name(obj) .. ": this cluster serves no " .. obj.apiVersion .. " " ..
    obj.kind .. (fb and (" nor " .. fb.to) or "")
end


local function fit_service(obj)
  for _, p in ipairs((obj.spec or {}).ports or {}) do
    if p.protocol == nil then p.protocol = "TCP" end
  end
end


local function stringify(map)
  if type(map) ~= "table" then return end
  for k, v in pairs(map) do
    if type(v) == "number" then map[k] = string.format("%.15g", v) end
  end
end


-- Every `resources` (requests, limits) anywhere in v; sizeLimit fields.
local function fit_resources(v, depth)
  if type(v) ~= "table" or depth > 32 then return end
  for k, x in pairs(v) do
    if k == "resources" and type(x) == "table" then
      stringify(x.requests)
      stringify(x.limits)
    elseif k == "sizeLimit" and type(x) == "number" then
      v[k] = string.format("%.15g", x)
    end
    fit_resources(x, depth + 1)
  end
end


local function fit_quantities(obj)
  fit_resources(obj.spec, 0)
  if obj.kind == "ResourceQuota" then stringify((obj.spec or {}).hard) end
  if obj.kind == "LimitRange" then
    for _, l in ipairs((obj.spec or {}).limits or {}) do
      for _, f in ipairs({ "max", "min", "default", "defaultRequest", "maxLimitRequestRatio" }) do
        stringify(l[f])
      end
    end
  end
end


local function fit_secret(obj)
  if type(obj.stringData) ~= "table" then return end
  obj.data = obj.data or {}
  for k, v in pairs(obj.stringData) do
    obj.data[k] = base64.encode(tostring(v))
  end
  obj.stringData = nil
end


-- Fit objs (the rendered array, changed in place) to the cluster for a release in
-- namespace ns. Returns objs, or nil and an error naming the object and why; nothing is
-- fitted in part: one refusal refuses the render.
function _M.fit(objs, ns)
  for _, obj in ipairs(objs) do
    if type(obj) ~= "table" or type(obj.apiVersion) ~= "string" or type(obj.kind) ~= "string"
      or type(obj.metadata) ~= "table" or type(obj.metadata.name) ~= "string" then
      return nil, "a rendered object lacks apiVersion, kind or metadata.name"
    end
    local info, err = fit_version(obj)
    if not info then return nil, err end
    if not info.namespaced then
      return nil, util.name(obj) .. " is cluster-scoped: a release holds objects of its " ..
        "namespace (" .. ns .. ") only"
    end
    local want = obj.metadata.namespace
    if want ~= nil and want ~= ns then
      return nil, util.name(obj) .. " names namespace '" .. tostring(want) ..
        "': a release holds objects of its namespace (" .. ns .. ") only"
    end
    obj.metadata.namespace = ns
    fit_quantities(obj)
    if obj.kind == "Service" and obj.apiVersion == "v1" then
      fit_service(obj)
    elseif obj.kind == "Secret" and obj.apiVersion == "v1" then
      fit_secret(obj)
    end
  end
  return objs
end


return _M
