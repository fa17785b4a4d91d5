-- ks/openstack/versions.lua: microversion ranges from a service's version document, and
-- whether one the caller wants is among them.
local errors = require "ks.openstack.errors"

local type = type
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber


local _M = {}


local function parse_version(v)
  local a, b = tostring(v or ""):match("^v?(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  return { tonumber(a), tonumber(b) }
end


local function less(x, y)
  return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2])
end


-- The microversion range {min = "2.1", max = "2.93"} the service's API offers (from its
-- version document, cached), or {} when it has no microversions; or nil and an error.
function _M.range(cloud, service)
  local base, root = cloud:endpoint(service)
  if not base then
    return nil, root
  end
  local cached = cloud.session.versions[base]
  if cached then
    return cached
  end
  local doc, err = cloud:request(service, "GET", root .. "/", { expect = { 200, 300 } })
  if not doc then
    return nil, err
  end
  -- The entry for the endpoint's version: "v2.1" exactly, or the same major ("v3" is
  -- Cinder's "v3.0"), or, for an unversioned endpoint (Placement), the CURRENT one.
  local ver = base:sub(#root + 2):match("^(v[%d%.]*%d)")
  local major = ver and ver:match("^(v%d+)")
  local exact, same, current
  for _, v in ipairs(doc.versions or (doc.version and { doc.version }) or {}) do
    local id = tostring(v.id or "")
    if ver and id == ver then
      exact = v
    elseif major and id:match("^(v%d+)") == major and (not same or v.status == "CURRENT") then
      same = v
    end
    if v.status == "CURRENT" and not current then
      current = v
    end
  end
  local best = exact or same or (not ver and current)
  local range = {}
  if best then
    local max = best.version or best.max_version
    if type(max) == "string" and max ~= "" then
      range = { min = best.min_version, max = max }
    end
  end
  cloud.session.versions[base] = range
  return range
end


-- wanted (e.g. "2.79") when the service supports it; with no wanted, its maximum. Or nil
-- and an error of kind "invalid" saying what it supports.
function _M.pick(cloud, service, wanted)
  local range, err = _M.range(cloud, service)
  if not range then
    return nil, err
  end
  if not wanted then
    return range.max
  end
  local w, lo, hi = parse_version(wanted), parse_version(range.min), parse_version(range.max)
  if w and hi and not less(w, lo or { 0, 0 }) and not less(hi, w) then
    return wanted
  end
  return nil, errors.invalid({ service = service, code = "microversion" },
    service .. " does not support microversion " .. tostring(wanted) .. " (it supports "
      .. (hi and (tostring(range.min) .. " to " .. range.max) or "none") .. ")")
end


return _M
