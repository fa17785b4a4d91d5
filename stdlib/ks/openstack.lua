-- ks/openstack.lua: OpenStack for plugins: clouds.yaml, Keystone v3 tokens, the service
-- catalog, requests with retries and a rate limit, errors classified one way, pagination.
--
--   local openstack = require "ks.openstack"
--   local cloud, err = openstack.connect { clouds_yaml = text, cloud = "mycloud" }
--   local body, err = cloud:request("compute", "GET", "/servers/" .. id, { microversion = "2.79" })
--   if not body and openstack.is_not_found(err) then ... end
--   local nets = cloud:scoped(project_id):list("network", "/networks", "networks")
--
-- connect() does no I/O: the first request authenticates. Every failure is an error
-- table (ks.openstack.errors): status, service, method, path, url, code, message, kind,
-- retryable, backoff, request_id; tostring() gives one line.
local json = require "ks.core.json"
local time = require "ks.core.time"
local errors = require "ks.openstack.errors"
local clouds = require "ks.openstack.clouds"
local catalog = require "ks.openstack.catalog"
local auth = require "ks.openstack.auth"
local transport = require "ks.openstack.transport"
local paging = require "ks.openstack.paging"
local versions = require "ks.openstack.versions"

local type = type
local next = next
local pairs = pairs
local ipairs = ipairs
local error = error
local tostring = tostring
local setmetatable = setmetatable
local byte = string.byte
local format = string.format
local lower = string.lower
local concat = table.concat
local sort = table.sort
local min = math.min


local _M = { errors = errors }


_M.DEFAULTS = {
  timeout = 60,          -- seconds per attempt
  retries = 3,           -- retries after the first attempt (see transport.lua for which)
  backoff_base = 0.5,    -- first retry after 0.25-0.5 s, then doubling ...
  backoff_cap = 8,       -- ... up to 4-8 s
  max_retry_after = 60,  -- a longer Retry-After is returned as err.backoff, not waited
  rate = 10,             -- requests per second per set of credentials (false: no limit)
  user_agent = "kupenstack",
}


-- Sessions (credentials, their tokens, the rate limit) by transport, then by credentials:
-- every connect() with the same clouds.yaml entry shares one, so that reconciles that
-- each connect do not each ask Keystone for a token.
local sessions = setmetatable({}, { __mode = "k" })


local Cloud = {}
Cloud.__index = Cloud


local function session_for(cfg, tr, opts)
  local by_key = sessions[tr]
  if not by_key then
    by_key = {}
    sessions[tr] = by_key
  end
  local key = clouds.key(cfg)
  local s = by_key[key]
  if not s then
    s = { cfg = cfg, tokens = {}, fetching = {}, versions = {} }
    by_key[key] = s
  end
  local rate = opts.rate
  if rate == nil then
    rate = _M.DEFAULTS.rate
  end
  if not s.bucket_set or (opts.rate ~= nil and rate ~= s.rate) then
    s.bucket = transport.bucket(rate or nil, opts.burst)
    s.rate, s.bucket_set = rate, true
  end
  return s
end


local function option(opts, name)
  if opts[name] ~= nil then
    return opts[name]
  end
  return _M.DEFAULTS[name]
end


-- A handle on the cloud opts.cloud of the clouds.yaml text opts.clouds_yaml. opts:
-- project_id (scope override), region_name, interface, endpoint_override ({compute =
-- "http://proxy:8080/v2.1"}: the URL of a service type instead of the catalog's, as the
-- clouds.yaml key compute_endpoint_override does; for proxies and tests), transport
-- (function like ks.core.http.request), microversions ({compute = "2.79"}: default per service),
-- timeout, retries, backoff_base, backoff_cap, max_retry_after, rate, burst, jitter.
-- Returns the handle, or nil and an error (kind "invalid") for a bad clouds.yaml.
function _M.connect(opts)
  if type(opts) ~= "table" then
    error("openstack.connect: options table expected", 2)
  end
  local cfg, err = clouds.parse(opts)
  if not cfg then
    return nil, err
  end
  local tr = opts.transport or require("ks.core.http").request
  local session = session_for(cfg, tr, opts)
  local stats = { requests = 0, by_service = {}, retries = 0, auth = 0, reauth = 0 }
  local jitter = opts.jitter
  if jitter == nil then
    jitter = true
  end
  return setmetatable({
    name = cfg.name, cfg = cfg, scope = cfg.scope, session = session, stats = stats,
    interface = cfg.interface, region = cfg.region,
    microversions = opts.microversions or {},
    timeout = option(opts, "timeout"),
    send = {
      transport = tr, bucket = session.bucket, stats = stats, jitter = jitter,
      retries = option(opts, "retries"), backoff_base = option(opts, "backoff_base"),
      backoff_cap = option(opts, "backoff_cap"), max_retry_after = option(opts, "max_retry_after"),
      ca_file = cfg.ca_file, cert_file = cfg.cert_file, key_file = cfg.key_file,
      timeout = option(opts, "timeout"), user_agent = option(opts, "user_agent"),
    },
  }, Cloud)
end


-- A handle sharing this one's credentials, counters and rate limit, whose token is scoped
-- to project_id. Application credentials are bound to one project: nil and an error.
function Cloud:scoped(project_id)
  if type(project_id) ~= "string" or project_id == "" then
    error("cloud:scoped: project id (string) expected", 2)
  end
  if self.cfg.method == "application_credential" then
    return nil, errors.invalid({ service = "identity", code = "scope" },
      "cloud '" .. self.name .. "' authenticates with an application credential, which is "
      .. "bound to its project: it cannot be scoped to project " .. project_id)
  end
  local c = setmetatable({}, Cloud)
  for k, v in pairs(self) do
    c[k] = v
  end
  c.scope = { project = { id = project_id } }
  return c
end


-- The token entry (token, project_id, project_name, user_id, roles, expires_at, catalog),
-- fetched when there is none or it is about to expire; or nil and an error.
function Cloud:auth()
  return auth.get(self.session, self.scope, self.send)
end


-- The project the handle's token is scoped to.
function Cloud:project_id()
  local e, err = self:auth()
  if not e then
    return nil, err
  end
  return e.project_id
end


local function endpoint(self, entry, service)
  local c = catalog.canonical(service)
  local override = self.cfg.endpoint_override[service] or self.cfg.endpoint_override[c]
  -- The token entry is shared by handles with other regions, interfaces and overrides.
  local key = service .. "\0" .. self.interface .. "\0" .. (self.region or "") .. "\0"
    .. (override or "")
  local ep = entry.endpoints[key]
  if ep then
    return ep[1], ep[2]
  end
  local url = override
  if not url then
    local msg
    url, msg = catalog.find(entry.catalog, service, self.interface, self.region)
    if not url then
      return nil, errors.invalid({ service = service, code = "no_endpoint" },
        "cloud '" .. self.name .. "': " .. msg)
    end
  end
  if entry.project_id then
    url = url:gsub("[%%%$]%(project_id%)s", entry.project_id)
      :gsub("[%%%$]%(tenant_id%)s", entry.project_id)
  end
  local base, root = catalog.base(service, url, entry.project_id)
  entry.endpoints[key] = { base, root }
  return base, root
end


-- The base URL of service (".../v2.1" for compute) and the root versioned paths join.
function Cloud:endpoint(service)
  local entry, err = self:auth()
  if not entry then
    return nil, err
  end
  return endpoint(self, entry, service)
end


-- Percent-encode s for a path segment or a query value (RFC 3986 unreserved kept).
function _M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return format("%%%02X", byte(c))
  end))
end


-- "a=1&b=x&tag=t1&tag=t2" of {a = 1, b = "x", tag = {"t1", "t2"}}, keys sorted.
function _M.query(q)
  local keys = {}
  for k in pairs(q) do
    keys[#keys + 1] = tostring(k)
  end
  sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = q[k]
    if type(v) ~= "table" then
      v = { v }
    end
    for _, x in ipairs(v) do
      parts[#parts + 1] = _M.escape(k) .. "=" .. _M.escape(x)
    end
  end
  return concat(parts, "&")
end


local function headers_for(self, service, entry, opts, has_body)
  local h = { ["X-Auth-Token"] = entry.token, ["Accept"] = "application/json",
    ["User-Agent"] = self.send.user_agent }
  if has_body then
    h["Content-Type"] = "application/json"
  end
  local c = catalog.canonical(service)
  local mv = opts.microversion or self.microversions[service] or self.microversions[c]
  if mv then
    local s = catalog.SERVICES[c] or {}
    h["OpenStack-API-Version"] = (s.microversion or c) .. " " .. mv
    if s.legacy_header then
      h[s.legacy_header] = mv
    end
  end
  for k, v in pairs(opts.headers or {}) do
    for hk in pairs(h) do
      if lower(hk) == lower(k) then
        h[hk] = nil
      end
    end
    h[k] = v
  end
  return h
end


local function decode(req, res, opts)
  if opts.raw then
    return res.body, res
  end
  local b = res.body
  if b == nil or not b:find("%S") then
    return {}, res
  end
  local ct = res.headers["content-type"] or ""
  if ct:find("json", 1, true) or b:match("^%s*[{%[]") then
    local v, derr = json.decode(b)
    if v == nil then
      return nil, errors.new { service = req.service, method = req.method, path = req.path,
        url = req.url, status = res.status, code = "bad_json", request_id = res.request_id,
        message = "could not decode the JSON response: " .. tostring(derr) }
    end
    return v, res
  end
  return b, res
end


-- One request: service_type, method, path (under the service's versioned base, or a full
-- URL); opts: body (table: JSON; string: as is), headers, query (table), microversion,
-- raw (return the body text), expect (statuses that succeed; default any 2xx), timeout,
-- retries, idempotent (override the method's). Returns the decoded body ({} when empty)
-- and res {status, headers, body, url, request_id}, or nil and an error. A 401 gets a new
-- token and one more try.
function Cloud:request(service, method, path, opts)
  if type(service) ~= "string" or type(method) ~= "string" or type(path) ~= "string" then
    error("cloud:request(service, method, path [, opts]): strings expected", 2)
  end
  opts = opts or {}
  local body = opts.body
  if type(body) == "table" then
    body = json.encode(body)
  end
  local send = self.send
  if opts.retries then
    send = setmetatable({ retries = opts.retries }, { __index = self.send })
  end
  local stale
  for round = 1, 2 do
    local entry, err = auth.get(self.session, self.scope, self.send, stale)
    if not entry then
      return nil, err
    end
    local base, root = endpoint(self, entry, service)
    if not base then
      return nil, root
    end
    local url = catalog.join(base, root, path)
    if opts.query and next(opts.query) then
      url = url .. (url:find("?", 1, true) and "&" or "?") .. _M.query(opts.query)
    end
    local req = {
      service = service, method = method, url = url,
      path = path:match("^https?://[^/]*(/?[^?]*)") or path:match("^[^?]*"),
      headers = headers_for(self, service, entry, opts, body ~= nil), body = body,
      timeout = opts.timeout or self.timeout, expect = opts.expect, idempotent = opts.idempotent,
      reauth = round == 1,
    }
    local res, serr = transport.send(req, send)
    if res then
      return decode(req, res, opts)
    end
    if serr.kind ~= "unauthorized" or round == 2 then
      return nil, serr
    end
    stale = entry.token
    self.stats.reauth = self.stats.reauth + 1
  end
end


-- Every item of a paginated collection: GET path (with opts.query, and opts.limit per
-- page), then each page's next link (Nova/Neutron/Cinder "<key>_links", Glance "next"),
-- until a page has no next link or no items. opts: query, limit, microversion, headers,
-- timeout, max_pages (1000). Returns the items (a JSON array), or nil and an error.
function Cloud:list(service, path, key, opts)
  return paging.list(self, service, path, key, opts)
end


-- The microversion range {min = "2.1", max = "2.93"} of service's API (its version
-- document, read once per endpoint), {} when it has none; or nil and an error.
function Cloud:versions(service)
  return versions.range(self, service)
end


-- wanted (e.g. "2.79") when service supports it; with no wanted, its maximum. Or nil and
-- an error of kind "invalid" saying what it supports.
function Cloud:microversion(service, wanted)
  return versions.pick(self, service, wanted)
end


-- Call fn() until it returns a true value (returned), or nil and an error that is not
-- retryable (returned), or opts.timeout seconds (default 300) pass (nil and a
-- "transient" timeout error). Sleeps opts.interval (default 2) between calls, multiplied
-- by opts.factor (default 1) each time up to opts.max_interval (30). opts.what names what
-- is waited for in the timeout's message.
function _M.wait_for(fn, opts)
  opts = opts or {}
  local timeout = opts.timeout or 300
  local interval = opts.interval or 2
  local start = time.monotonic()
  local last
  while true do
    local v, err = fn()
    if v then
      return v
    end
    if errors.is_error(err) and not err.retryable then
      return nil, err
    end
    last = err
    local left = timeout - (time.monotonic() - start)
    if left <= 0 then
      return nil, errors.new { kind = "transient", retryable = true, code = "timeout",
        service = opts.service,
        message = "timed out after " .. timeout .. " s waiting for " .. (opts.what or "a condition")
          .. (last and (": " .. tostring(last)) or "") }
    end
    time.sleep(min(interval, left))
    interval = min(interval * (opts.factor or 1), opts.max_interval or 30)
  end
end


function Cloud.wait_for(_, fn, opts)
  return _M.wait_for(fn, opts)
end


function _M.is_error(err)
  return errors.is_error(err)
end


function _M.is_not_found(err)
  return errors.is_error(err) and err.kind == "not_found"
end


function _M.is_retryable(err)
  return errors.is_error(err) and err.retryable
end


return _M
