-- ks/service/spec.lua: what a service declares, read: the release table (an OpenStack
-- release -> its image tags), the spec's checks (a message naming the field), the chart's
-- values made from the spec, and the merge and null rules they share. Pure but for
-- chart.source's check of spec.chart. ks.service re-exports each of these.
local yaml = require "ks.core.yaml"
local json = require "ks.core.json"
local chart = require "ks.service.chart"

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

-- The release table: an OpenStack release -> the tag of OpenStack-Helm's images, and
-- optionally whole image references by "<chart>.<image key>". The operator extends or
-- overrides it with the setting `releases` (a YAML mapping of the same shape).
_M.RELEASES = {
  ["2023.1"] = { tag = "2023.1-ubuntu_jammy" },
  ["2023.2"] = { tag = "2023.2-ubuntu_jammy" },
  ["2024.1"] = { tag = "2024.1-ubuntu_jammy" },
  ["2024.2"] = { tag = "2024.2-ubuntu_jammy" },
}


function _M.sorted_keys(t)
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


-- spec without its null fields: a mapping emptied by a server-side apply is stored as
-- null (the CRDs allow it, kubernetes#104694), and null means what absent means.
function _M.without_nulls(spec)
  local out = {}
  for k, v in pairs(spec or {}) do
    if v ~= json.null then out[k] = v end
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


local function is_int(n)
  return type(n) == "number" and n >= 0 and n == math.floor(n)
end


-- The spec checked: a message naming the field, or nil.
function _M.check(def, spec, table_)
  if type(spec.version) ~= "string" or spec.version == "" then
    return "spec.version must name an OpenStack release (one of " ..
      table.concat(_M.sorted_keys(table_), ", ") .. ")"
  end
  if not table_[spec.version] then
    return "spec.version: unknown release '" .. spec.version .. "' (the release table has " ..
      table.concat(_M.sorted_keys(table_), ", ") .. "; the operator adds more with the setting 'releases')"
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
  local mu = spec.maxUnavailable
  local _, cbad = chart.source(spec.chart, def.chart, "")
  if cbad then return cbad end
  if spec.region ~= nil and (type(spec.region) ~= "string" or spec.region == "") then
    return "spec.region must name an OpenStack region"
  end
  if mu ~= nil and not (is_int(mu) or (type(mu) == "string" and mu:match("^%d+%%$"))) then
    return "spec.maxUnavailable must be a whole number >= 0 or a percentage (\"25%\")"
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
  if spec.maxUnavailable ~= nil then
    -- OpenStack-Helm's key for every Deployment's rolling update
    v.pod = v.pod or {}
    v.pod.lifecycle = { upgrades = { deployments = { rolling_update = {
      max_unavailable = spec.maxUnavailable } } } }
  end
  if spec.conf then v.conf = copy(spec.conf) end
  if spec.region then
    -- OpenStack-Helm's charts read the region of each Keystone user they use from
    -- endpoints.identity.auth.<user>.region_name (keystone's bootstrap: admin's).
    local auth = {}
    for _, u in ipairs(def.auth or { "admin", def.chart }) do
      auth[u] = { region_name = spec.region }
    end
    v.endpoints = { identity = { auth = auth } }
  end
  if spec.endpoints then v.endpoints = _M.merge(v.endpoints or {}, spec.endpoints) end
  if spec.values then v = _M.merge(v, spec.values) end
  return v
end


return _M
