-- ks/openstack/clouds.lua: one cloud of a clouds.yaml, checked and reduced to what
-- authentication and endpoint lookup need. No I/O.
local yaml = require "ks.core.yaml"
local json = require "ks.core.json"
local errors = require "ks.openstack.errors"

local type = type
local pairs = pairs
local tostring = tostring
local concat = table.concat
local sort = table.sort


local _M = {}


-- A string value of a clouds.yaml field, or nil (absent, null, or empty).
local function str(v)
  if v == nil or v == json.null then
    return nil
  end
  if type(v) == "number" then
    return tostring(v)
  end
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil
end


local function fail(name, message)
  return nil, errors.invalid({ service = "identity", code = "clouds.yaml" },
    "clouds.yaml: cloud '" .. tostring(name) .. "': " .. message)
end


-- {id=} or {name=} of a domain, from <prefix>_id / <prefix>_name, then the defaults.
local function domain(auth, prefix)
  local id = str(auth[prefix .. "_id"]) or str(auth.default_domain_id)
  local name = str(auth[prefix .. "_name"]) or str(auth.default_domain_name)
  if id then
    return { id = id }
  elseif name then
    return { name = name }
  end
  return nil
end


-- Keystone v3's URL: ".../v3" kept, ".../v2.0" replaced, nothing appended.
local function identity_url(url)
  url = url:gsub("/+$", "")
  if url:match("/v3$") then
    return url
  end
  return (url:gsub("/v2%.0$", "")) .. "/v3"
end


local function password_auth(cfg, auth)
  cfg.method = "password"
  cfg.password = str(auth.password)
  local user = { id = str(auth.user_id), name = str(auth.username) }
  if not user.id and not user.name then
    return "auth.username or auth.user_id is required for password authentication"
  end
  if not cfg.password then
    return "auth.password is required for password authentication"
  end
  if not user.id then
    user.domain = domain(auth, "user_domain") or { id = "default" }
  end
  cfg.user = user
  return nil
end


local function appcred_auth(cfg, auth)
  cfg.method = "application_credential"
  local ac = { id = str(auth.application_credential_id),
    name = str(auth.application_credential_name),
    secret = str(auth.application_credential_secret) }
  if not ac.secret then
    return "auth.application_credential_secret is required"
  end
  if not ac.id then
    if not ac.name then
      return "auth.application_credential_id or _name is required"
    end
    ac.user = { id = str(auth.user_id), name = str(auth.username) }
    if not ac.user.id and not ac.user.name then
      return "auth.username or auth.user_id is required with application_credential_name"
    end
    if not ac.user.id then
      ac.user.domain = domain(auth, "user_domain") or { id = "default" }
    end
  end
  cfg.appcred = ac
  return nil
end


-- The project scope of a password token: project_id, or project_name in its domain.
local function project_scope(auth, project_id)
  local id = project_id or str(auth.project_id) or str(auth.tenant_id)
  if id then
    return { project = { id = id } }
  end
  local name = str(auth.project_name) or str(auth.tenant_name)
  if name then
    return { project = { name = name,
      domain = domain(auth, "project_domain") or domain(auth, "user_domain") or { id = "default" } } }
  end
  return nil
end


local AUTH_TYPES = {
  password = "password", v3password = "password",
  v3applicationcredential = "application_credential",
  applicationcredential = "application_credential",
  application_credential = "application_credential",
}


-- A cloud's settings: c is its table in clouds.yaml, opts the caller's overrides
-- (interface, region_name, project_id, endpoint_override: {compute = url} taking
-- precedence over the clouds.yaml's <service>_endpoint_override keys).
local function build(name, c, opts)
  local auth = c.auth
  if type(auth) ~= "table" then
    return fail(name, "no auth section")
  end
  if c.verify == false or c.insecure == true or c.insecure == "true" or c.verify == "false" then
    return fail(name, "verify: false is refused: TLS verification is always on; "
      .. "set cacert to the CA file that signed the endpoints' certificates")
  end
  local api = str(c.identity_api_version)
  if api and api ~= "3" then
    return fail(name, "identity_api_version " .. api .. " is not supported (Keystone v3 only)")
  end
  local auth_url = str(auth.auth_url)
  if not auth_url then
    return fail(name, "auth.auth_url is required")
  end
  local cfg = {
    name = name,
    auth_url = identity_url(auth_url),
    interface = (str(opts.interface) or str(c.interface) or str(c.endpoint_type) or "public")
      :gsub("URL$", ""),
    region = str(opts.region_name) or str(c.region_name),
    ca_file = str(c.cacert), cert_file = str(c.cert), key_file = str(c.key),
    endpoint_override = {},
  }
  if not cfg.region and type(c.regions) == "table" then
    local r = c.regions[1]
    cfg.region = str(type(r) == "table" and r.name or r)
  end
  for k, v in pairs(c) do
    local service = type(k) == "string" and k:match("^(.+)_endpoint_override$")
    if service and str(v) then
      cfg.endpoint_override[service:gsub("_", "-")] = str(v)
    end
  end
  if type(opts.endpoint_override) == "table" then
    for service, url in pairs(opts.endpoint_override) do
      if type(service) == "string" and str(url) then
        cfg.endpoint_override[service:gsub("_", "-")] = str(url)
      end
    end
  end
  local auth_type = str(c.auth_type)
    or (str(auth.application_credential_secret) and "v3applicationcredential") or "password"
  local method = AUTH_TYPES[auth_type]
  local problem
  if method == "password" then
    problem = password_auth(cfg, auth)
    cfg.scope = project_scope(auth, str(opts.project_id))
  elseif method == "application_credential" then
    problem = appcred_auth(cfg, auth)
    if str(opts.project_id) then
      problem = "application credentials are bound to one project: project_id cannot be set"
    end
  else
    problem = "auth_type " .. auth_type .. " is not supported (password, v3applicationcredential)"
  end
  if problem then
    return fail(name, problem)
  end
  return cfg
end


-- The cloud named opts.cloud (or the only one) of the clouds.yaml text opts.clouds_yaml.
function _M.parse(opts)
  local text = opts.clouds_yaml
  if type(text) ~= "string" or text == "" then
    return fail(opts.cloud, "no clouds.yaml text given (clouds_yaml)")
  end
  local doc, err = yaml.decode(text)
  if type(doc) ~= "table" or type(doc.clouds) ~= "table" then
    return nil, errors.invalid({ service = "identity", code = "clouds.yaml" },
      "could not parse clouds.yaml: " .. tostring(err or "no 'clouds' mapping"))
  end
  local names = {}
  for k in pairs(doc.clouds) do
    names[#names + 1] = tostring(k)
  end
  sort(names)
  local name = opts.cloud
  if name == nil then
    if #names ~= 1 then
      return fail(nil, "no cloud named and clouds.yaml has " .. #names .. ": "
        .. concat(names, ", "))
    end
    name = names[1]
  end
  local c = doc.clouds[name]
  if type(c) ~= "table" then
    return fail(name, "not in clouds.yaml (it has: " .. concat(names, ", ") .. ")")
  end
  return build(name, c, opts)
end


-- A string naming the credentials (not the scope): clouds with equal keys share tokens.
function _M.key(cfg)
  local u = cfg.user or (cfg.appcred and cfg.appcred.user) or {}
  local d = u.domain or {}
  local ac = cfg.appcred or {}
  return concat({ cfg.auth_url, cfg.method, u.id or "", u.name or "", d.id or "", d.name or "",
    cfg.password or "", ac.id or "", ac.name or "", ac.secret or "", cfg.ca_file or "",
    cfg.cert_file or "", cfg.key_file or "" }, "\0")
end


return _M
