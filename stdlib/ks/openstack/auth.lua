-- ks/openstack/auth.lua: Keystone v3 tokens. A session holds one set of credentials and
-- its tokens, one per scope, each reused until shortly before it expires; the cloud
-- handles of one clouds.yaml entry (and their scoped() children) share a session.
local json = require "ks.core.json"
local time = require "ks.core.time"
local errors = require "ks.openstack.errors"
local transport = require "ks.openstack.transport"

local type = type
local ipairs = ipairs
local pcall = pcall
local error = error
local tonumber = tonumber
local tostring = tostring
local min = math.min


local _M = {}


-- A token is renewed this long before it expires (at most a quarter of its lifetime).
_M.RENEW_BEFORE = 120
-- How long a coroutine waits for another one's token request before making its own.
_M.FETCH_WAIT = 30


-- The scope's key in a session's token table.
function _M.scope_key(scope)
  if not scope then
    return "unscoped"
  end
  local p = scope.project
  if p.id then
    return "project:" .. p.id
  end
  local d = p.domain or {}
  return "project:" .. (d.id or "") .. "/" .. (d.name or "") .. "/" .. p.name
end


-- The body of POST /v3/auth/tokens for cfg's credentials and scope.
function _M.body(cfg, scope)
  local identity
  if cfg.method == "application_credential" then
    identity = { methods = { "application_credential" },
      application_credential = cfg.appcred }
    scope = nil  -- bound to its project; Keystone refuses a scope with it
  else
    identity = { methods = { "password" },
      password = { user = { id = cfg.user.id, name = cfg.user.name, domain = cfg.user.domain,
        password = cfg.password } } }
  end
  return { auth = { identity = identity, scope = scope } }
end


-- Seconds since the epoch of Keystone's "2026-11-25T15:34:28.000000Z", or nil.
function _M.parse_time(s)
  if type(s) ~= "string" then
    return nil
  end
  local y, m, d, h, mi, sec = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then
    return nil
  end
  local t = errors.unix_time(tonumber(y), tonumber(m), tonumber(d), tonumber(h),
    tonumber(mi), tonumber(sec))
  local sign, oh, om = s:match("([%+%-])(%d%d):?(%d%d)$")
  if sign then  -- an offset rather than Z
    local off = tonumber(oh) * 3600 + tonumber(om) * 60
    t = sign == "+" and t - off or t + off
  end
  return t
end


-- What a cloud handle keeps of a token: the response's X-Subject-Token and body. The
-- renewal time is on the monotonic clock: the token's lifetime (expires_at - issued_at,
-- both Keystone's clock) counted from when it arrived, so clock skew does not matter.
function _M.entry(token, doc, received_mono, now)
  local t = doc.token
  local expires = _M.parse_time(t.expires_at)
  local issued = _M.parse_time(t.issued_at) or now
  local lifetime = expires and (expires - issued) or 3600
  local margin = min(_M.RENEW_BEFORE, lifetime / 4)
  local project = type(t.project) == "table" and t.project or {}
  local roles = {}
  for i, r in ipairs(type(t.roles) == "table" and t.roles or {}) do
    roles[i] = r.name
  end
  return {
    token = token,
    renew_at = received_mono + lifetime - margin,
    expires_at = t.expires_at,
    catalog = type(t.catalog) == "table" and t.catalog or {},
    project_id = project.id, project_name = project.name,
    user_id = type(t.user) == "table" and t.user.id or nil,
    roles = roles,
    endpoints = {},
  }
end


local function hint(cfg, scope)
  if cfg.method == "application_credential" then
    local ac = cfg.appcred
    return "application credential " .. (ac.id or ac.name) .. " of cloud '" .. cfg.name
      .. "' at " .. cfg.auth_url .. ": check its id and secret, and that it has not expired"
  end
  local u = cfg.user
  local who = u.id and ("user id " .. u.id)
    or ("user '" .. u.name .. "' in domain '" .. tostring(u.domain.name or u.domain.id) .. "'")
  local s = "password authentication as " .. who .. " of cloud '" .. cfg.name .. "' at "
    .. cfg.auth_url .. ": check the username, password, project and domains"
  if scope and scope.project.id then
    s = s .. ", and that the user has a role on project " .. scope.project.id
  end
  return s
end


-- Ask Keystone for a token of scope. Returns an entry, or nil and an error.
local function fetch(session, scope, send_opts)
  local cfg = session.cfg
  local res, err = transport.send({
    service = "identity", method = "POST", url = cfg.auth_url .. "/auth/tokens",
    path = "/v3/auth/tokens", idempotent = true, changes_nothing = true,
    timeout = send_opts.timeout,
    headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json",
      ["User-Agent"] = send_opts.user_agent },
    body = json.encode(_M.body(cfg, scope)),
  }, send_opts)
  send_opts.stats.auth = send_opts.stats.auth + 1
  if not res then
    if err.kind == "unauthorized" or err.kind == "not_found" or err.kind == "forbidden" then
      err.hint = hint(cfg, scope)
    end
    return nil, err
  end
  local token = res.headers["x-subject-token"]
  local doc = json.decode(res.body)
  if not token or type(doc) ~= "table" or type(doc.token) ~= "table" then
    return nil, errors.new { service = "identity", method = "POST", path = "/v3/auth/tokens",
      url = cfg.auth_url .. "/auth/tokens", status = res.status, code = "bad_token_response",
      message = "Keystone answered " .. res.status .. " without X-Subject-Token or a token body",
      request_id = res.request_id }
  end
  return _M.entry(token, doc, time.monotonic(), time.now())
end


-- The token entry of scope, from the session when still good, else a new one. stale: a
-- token that a service refused (401); it is not returned again.
function _M.get(session, scope, send_opts, stale)
  local key = _M.scope_key(scope)
  local e = session.tokens[key]
  if e and e.token ~= stale and time.monotonic() < e.renew_at then
    return e
  end
  -- Another coroutine is fetching this scope's token: wait for it rather than ask again.
  while session.fetching[key] and time.monotonic() < session.fetching[key] do
    time.sleep(0.05)
    e = session.tokens[key]
    if e and e.token ~= stale and time.monotonic() < e.renew_at then
      return e
    end
  end
  session.fetching[key] = time.monotonic() + _M.FETCH_WAIT
  local ok, entry, err = pcall(fetch, session, scope, send_opts)
  session.fetching[key] = nil
  if not ok then
    error(entry, 0)
  end
  if entry then
    session.tokens[key] = entry
  end
  return entry, err
end


return _M
