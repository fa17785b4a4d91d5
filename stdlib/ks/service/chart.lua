-- ks/service/chart.lua: where a service's chart comes from (spec.chart), checked and
-- turned into what ks.release.apply takes. Pure: no I/O.
--
--   chart: keystone                      # a chart of the operator's charts directory
--   chart:                               # the same, pinned to its content
--     name: keystone-0.3.1.tgz           #   a directory or a .tgz in the charts directory
--     digest: sha256:<64 hex>            #   the content digest status.chartDigest shows
--   chart:                               # a chart repository (Helm's index.yaml)
--     repository: https://charts.example/openstack-helm/
--     name: keystone                     #   default: the kind's chart
--     version: 0.3.1
--     digest: sha256:<64 hex>            #   required: the .tgz's SHA-256
--
-- A name is confined to the charts directory: one or more path segments of letters,
-- digits, '.', '_', '-', none starting with '.' (no "..", no absolute path).
local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type


local _M = {}

_M.FIELDS = { name = true, repository = true, version = true, digest = true }


-- Is d "sha256:<64 hex digits>" (the form ks.release.source takes)?
local function sha256_pin(d)
  local h = d:lower():match("^sha256:(%x+)$")
  return h ~= nil and #h == 64
end


-- Is name a path inside the charts directory?
function _M.confined(name)
  if type(name) ~= "string" or name == "" or #name > 253 then return false end
  for seg in (name .. "/"):gmatch("([^/]*)/") do
    if not seg:match("^[%w][%w._-]*$") or seg:find("..", 1, true) then return false end
  end
  return true
end


-- The release source of chart (spec.chart: nil, a string or a mapping) for a kind whose own
-- chart is default, in charts_dir: { chart =, repo =, version =, digest = }, or nil and a
-- message naming the field (field: "spec.chart", or the ControlPlane's path).
function _M.source(chart, default, charts_dir, field)
  field = field or "spec.chart"
  if chart == nil then chart = default end
  if type(chart) == "string" then
    if not _M.confined(chart) then
      return nil, field .. " must name a chart of the operator's charts directory (a " ..
        "directory or a .tgz, no '..' and no absolute path), or be a mapping {name, " ..
        "repository, version, digest}"
    end
    return { chart = charts_dir .. "/" .. chart }
  end
  if type(chart) ~= "table" or chart[1] ~= nil then
    return nil, field .. " must be a chart name or a mapping {name, repository, version, digest}"
  end
  for k in pairs(chart) do
    if not _M.FIELDS[k] then
      return nil, field .. "." .. tostring(k) .. ": unknown field (name, repository, version, digest)"
    end
  end
  for _, k in ipairs({ "name", "repository", "version", "digest" }) do
    if chart[k] ~= nil and (type(chart[k]) ~= "string" or chart[k] == "") then
      return nil, field .. "." .. k .. " must be a non-empty string"
    end
  end
  local name = chart.name or default
  if chart.repository then
    if not chart.repository:match("^https?://[^/]+") then
      return nil, field .. ".repository must be the http(s) URL of a chart repository"
    end
    if not name:match("^[%w][%w._-]*$") then
      return nil, field .. ".name must be a chart's name in the repository"
    end
    if not chart.version then
      return nil, field .. ".version: a chart from a repository needs its version"
    end
    if not chart.digest then
      return nil, field .. ".digest: a chart from a repository must be pinned by its " ..
        "content digest (sha256:<64 hex digits>, the .tgz's SHA-256, the index's digest), " ..
        "not by its version alone"
    end
    if not sha256_pin(chart.digest) then
      return nil, field .. ".digest must be sha256:<64 hex digits>"
    end
    return { repo = chart.repository, chart = name, version = chart.version,
             digest = chart.digest }
  end
  if chart.version then
    return nil, field .. ".version: only a chart of a repository has a version (set " ..
      field .. ".repository); a chart of the charts directory is pinned by " .. field .. ".digest"
  end
  if not _M.confined(name) then
    return nil, field .. ".name must name a chart of the operator's charts directory (a " ..
      "directory or a .tgz, no '..' and no absolute path)"
  end
  if chart.digest and not sha256_pin(chart.digest) then
    return nil, field .. ".digest must be sha256:<64 hex digits> (status.chartDigest)"
  end
  return { chart = charts_dir .. "/" .. name, digest = chart.digest }
end


-- A service's chart inherited from a ControlPlane's (shared: a mapping of repository and
-- version) with the service's own over it: its string wins whole, its mapping key by key.
function _M.inherit(shared, own)
  if own == nil then return shared end
  if type(own) ~= "table" or type(shared) ~= "table" then return own end
  local out = {}
  for k, v in pairs(shared) do out[k] = v end
  for k, v in pairs(own) do out[k] = v end
  return out
end


return _M
