-- ks/openstack/catalog.lua: which URL serves a service type, from a Keystone v3 catalog,
-- and how a request path joins it (each service registers its endpoint differently:
-- Nova's ends in /v2.1, Neutron's and Glance's have no version, Cinder's ends in
-- /v3/<project_id>). No I/O.
local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local concat = table.concat


local _M = {}


-- Per canonical service type: the API version requests use, the aliases it is found
-- under in catalogs (service-types-authority), and the microversion header's name.
local SERVICES = {
  compute = { version = "v2.1", microversion = "compute",
    legacy_header = "X-OpenStack-Nova-API-Version" },
  network = { version = "v2.0", aliases = { "networking" } },
  image = { version = "v2" },
  identity = { version = "v3" },
  ["block-storage"] = { version = "v3", project = true, microversion = "volume",
    aliases = { "volumev3", "volumev2", "volume", "block-store" } },
  placement = { microversion = "placement" },
}
_M.SERVICES = SERVICES

local ALIAS = {}
for name, s in pairs(SERVICES) do
  ALIAS[name] = name
  for _, a in ipairs(s.aliases or {}) do
    ALIAS[a] = name
  end
end


-- The canonical name of a service type: "volumev3" -> "block-storage".
function _M.canonical(service_type)
  return ALIAS[service_type] or service_type
end


-- The types a catalog may list the service under, preferred first.
local function names(service_type)
  local c = _M.canonical(service_type)
  local s = SERVICES[c]
  local list = { service_type }
  if c ~= service_type then
    list[#list + 1] = c
  end
  for _, a in ipairs(s and s.aliases or {}) do
    if a ~= service_type then
      list[#list + 1] = a
    end
  end
  return list
end


local function pick(entry, interface, region)
  for _, e in ipairs(entry.endpoints or {}) do
    if e.interface == interface
        and (not region or e.region_id == region or e.region == region) then
      return e.url
    end
  end
  return nil
end


-- The endpoint URL of service_type for interface and region (nil: any region) in a v3
-- token's catalog, or nil and a message saying what the catalog has.
function _M.find(catalog, service_type, interface, region)
  local seen = {}
  for _, name in ipairs(names(service_type)) do
    for _, entry in ipairs(catalog or {}) do
      if entry.type == name then
        local url = pick(entry, interface, region)
        if url then
          return url
        end
        for _, e in ipairs(entry.endpoints or {}) do
          seen[#seen + 1] = tostring(e.interface) .. "@" .. tostring(e.region_id or e.region)
        end
      end
    end
  end
  local want = service_type .. " (" .. interface .. (region and (", region " .. region) or "") .. ")"
  if #seen == 0 then
    local types = {}
    for _, entry in ipairs(catalog or {}) do
      types[#types + 1] = tostring(entry.type)
    end
    return nil, "no endpoint for " .. want .. " in the catalog, which has: "
      .. (#types > 0 and concat(types, ", ") or "nothing (an unscoped token?)")
  end
  return nil, "no endpoint for " .. want .. "; the catalog has it at " .. concat(seen, ", ")
end


-- The base URL requests are made under, and the root (scheme://host[/prefix]) that
-- versioned paths join: an endpoint already ending in a version (optionally followed by a
-- project ID: Nova's legacy /v2.1/<id>, Cinder's /v3/<id>) is kept; one without gets the
-- service's version (and, for Cinder, the project ID).
function _M.base(service_type, url, project_id)
  local s = SERVICES[_M.canonical(service_type)]
  url = url:gsub("/+$", "")
  local root, ver = url:match("^(.-)/(v%d+[%.%d]*)$")
  if not root then
    root, ver = url:match("^(.-)/(v%d+[%.%d]*)/[^/]+$")
  end
  if ver then
    return url, root
  end
  if not s or not s.version then
    return url, url
  end
  local base = url .. "/" .. s.version
  if s.project and project_id then
    base = base .. "/" .. project_id
  end
  return base, url
end


-- The URL of path under base; a path that starts with a version ("/v2/images?marker=",
-- Glance's next links) joins the root instead; an absolute URL is kept.
function _M.join(base, root, path)
  if path:match("^https?://") then
    return path
  end
  if path ~= "" and path:sub(1, 1) ~= "/" then
    path = "/" .. path
  end
  if path:match("^/v%d+[%.%d]*/") or path:match("^/v%d+[%.%d]*$") then
    return root .. path
  end
  return base .. path
end


return _M
