-- ks/openstack/errors.lua: one error type and one classification for every OpenStack
-- failure, so that each plugin decides "retry, back off, or give up" the same way.
--
-- An error is a table with:
--   status     HTTP status, 0 when no response came (transport) or none was made (config)
--   service    "compute", "network", ... ("identity" for authentication)
--   method     "GET", ...
--   path       the request path without its query ("/servers")
--   url        the full URL asked for
--   code       the service's name for the error: Nova "itemNotFound", Neutron
--              "NetworkInUse", Keystone/Glance "Not Found"; the transport's reason
--   message    one line a person can act on, from the response body
--   request_id x-openstack-request-id (or x-compute-request-id), when the service sent one
--   kind       "not_found" "conflict" "quota" "invalid" "forbidden" "unauthorized"
--              "transient" "terminal"
--   retryable  whether trying again later can succeed
--   backoff    seconds to wait before trying again, when the service or the kind says
--   retry_after the Retry-After header in seconds, when there was one
--   hint       what to check, for errors a person must fix (authentication)
-- tostring(err): "compute POST /servers: 403 Forbidden: Quota exceeded for instances: ..."
local json = require "ks.core.json"

local type = type
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local getmetatable = getmetatable
local find = string.find
local gsub = string.gsub
local lower = string.lower
local sub = string.sub


local _M = {}

-- Quota exceeded: the project must be given more quota or free something; a long backoff.
_M.QUOTA_BACKOFF = 60


local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable", [409] = "Conflict",
  [410] = "Gone", [413] = "Request Entity Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}


local Error = {}
Error.__index = Error


function Error.__tostring(e)
  local what = (e.service or "openstack") .. (e.method and (" " .. e.method) or "")
    .. (e.path and (" " .. e.path) or "")
  local status
  if e.status and e.status > 0 then
    status = tostring(e.status) .. (REASONS[e.status] and (" " .. REASONS[e.status]) or "")
  else
    status = e.code or "error"
  end
  local s = what .. ": " .. status .. ": " .. (e.message or "")
  if e.hint then
    s = s .. " (" .. e.hint .. ")"
  end
  return s
end


-- A new error from fields; kind defaults to "terminal", retryable to false.
function _M.new(fields)
  fields.status = fields.status or 0
  fields.kind = fields.kind or "terminal"
  fields.retryable = fields.retryable or false
  return setmetatable(fields, Error)
end


function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == Error
end


local function str(v)
  if type(v) == "string" then
    return v
  elseif type(v) == "number" then
    return tostring(v)
  end
  return nil
end


-- One line: markup and "<br />" gone, runs of white space made one space, at most 400
-- bytes; of a long text (Glance appends its JSON schema) the first paragraph only.
function _M.one_line(s)
  s = gsub(s, "<[^>]*>", " ")
  local para = #s > 200 and s:match("^%s*(.-%S)%s*\n%s*\n")
  if para then
    s = para
  end
  s = gsub(s, "&nbsp;", " ")
  s = gsub(s, "%s+", " ")
  s = gsub(s, "^ ", "")
  s = gsub(s, " $", "")
  if #s > 400 then
    s = sub(s, 1, 397) .. "..."
  end
  return s
end


-- The shapes of OpenStack error bodies, as (code, message) or nil.
local function from_doc(doc)
  if type(doc) ~= "table" then
    return nil
  end
  -- Neutron: {"NeutronError": {"type", "message", "detail"}}
  local ne = doc.NeutronError
  if type(ne) == "table" then
    return str(ne.type), str(ne.message) or str(ne.detail)
  end
  -- Keystone {"error": {"code", "message", "title"}}; Nova's 401 from keystonemiddleware too.
  if type(doc.error) == "table" then
    return str(doc.error.title) or str(doc.error.code), str(doc.error.message)
  end
  -- Placement (and the API-WG guideline): {"errors": [{"status", "title", "detail", "code"}]}
  if type(doc.errors) == "table" and type(doc.errors[1]) == "table" then
    local e = doc.errors[1]
    return str(e.code) or str(e.title), str(e.detail) or str(e.title)
  end
  -- Glance: {"message", "code": "404 Not Found", "title"}
  if str(doc.message) then
    return str(doc.title) or str(doc.code), str(doc.message)
  end
  -- Nova and Cinder: {"itemNotFound": {"code": 404, "message": ...}}, one key.
  for k, v in pairs(doc) do
    if type(v) == "table" and (v.message ~= nil or v.code ~= nil) then
      return k, str(v.message) or str(v.explanation)
    end
  end
  return nil
end


-- (code, message) of a response body, whatever its shape.
function _M.parse_body(body)
  if type(body) ~= "string" or body == "" then
    return nil, nil
  end
  if body:match("^%s*{") then
    local doc = json.decode(body)
    local code, msg = from_doc(doc)
    if code or msg then
      return code, msg and _M.one_line(msg)
    end
  end
  -- webob's HTML (a client accepting */*): "<html><head><title>404 Not Found</title>
  -- </head><body><h1>404 Not Found</h1>The resource could not be found.<br /><br />..."
  -- or its plain text (no Accept): "404 Not Found\n\nThe resource could not be found.\n\n"
  local title = body:match("<title>(.-)</title>")
  local text = body
  if title then
    text = gsub(body, "<head>.-</head>", "")
    text = gsub(text, "<h1>.-</h1>", "")
  else
    local status_line, rest = body:match("^%s*(%d%d%d [^\n]*)\n%s*\n(.*)$")
    if status_line then
      title, text = status_line, rest
    end
  end
  title = title and _M.one_line(title)
  text = _M.one_line(text)
  if text == "" then
    text = title
  end
  return title and (title:gsub("^%d%d%d ", "")), text
end


local function has(s, pattern)
  return s ~= nil and find(lower(s), pattern) ~= nil
end


local function is_quota(status, code, message)
  if status ~= 403 and status ~= 409 and status ~= 413 then
    return false
  end
  return code == "OverQuota" or code == "overLimit" or has(message, "quota")
    or has(message, "limitexceeded") or has(code, "quota")
end


-- A resource in a transitional state: trying again later can succeed.
local function is_transitional(service, status, code, message)
  if status == 409 then
    if code and find(code, "InUse$") then   -- Neutron NetworkInUse, SubnetInUse, ...
      return true
    end
    -- Nova: "Cannot 'stop' instance <id> while it is in task_state powering-off" (but not
    -- "... while it is in vm_state active": that state stays until someone changes it)
    return (has(message, "task_state") and not has(message, "task_state none"))
      or has(message, "vm_state building")
  end
  -- Cinder: 400 "Invalid volume: Volume status must be available or error, but current
  -- status is: creating"
  return status == 400 and service ~= nil and (find(service, "^volume") or find(service, "^block"))
    and has(message, "status must be")
end


-- kind, retryable, backoff for a status with the body's code and message.
local function classify(service, status, code, message, retry_after)
  if is_quota(status, code, message) then
    if status == 413 and retry_after and retry_after > 0 and not has(message, "quota")
        and not has(message, "exceeded") then
      return "transient", true, retry_after    -- a rate limit, not a quota
    end
    local backoff = _M.QUOTA_BACKOFF
    if retry_after and retry_after > backoff then
      backoff = retry_after
    end
    return "quota", true, backoff
  end
  if is_transitional(service, status, code, message) then
    return "conflict", true, nil
  end
  if status == 404 or status == 410 then
    return "not_found", false, nil
  elseif status == 409 then
    return "conflict", false, nil
  elseif status == 401 then
    return "unauthorized", false, nil
  elseif status == 403 then
    return "forbidden", false, nil
  elseif status == 400 or status == 405 or status == 406 or status == 415 or status == 422 then
    return "invalid", false, nil
  elseif status == 413 then
    return "transient", true, retry_after
  elseif status == 429 then
    return "transient", true, retry_after or 5
  elseif status == 500 or status == 502 or status == 503 or status == 504 then
    return "transient", true, retry_after
  end
  return "terminal", false, nil
end


-- Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

function _M.retry_after(value, now)
  if type(value) ~= "string" and type(value) ~= "number" then
    return nil
  end
  local n = tonumber(value)
  if n then
    return n >= 0 and n or nil
  end
  local d, mon, y, h, mi, s = tostring(value):match("(%d+) (%a+) (%d+) (%d+):(%d+):(%d+)")
  if not d or not MONTHS[mon] or not now then
    return nil
  end
  local t = _M.unix_time(tonumber(y), MONTHS[mon], tonumber(d), tonumber(h), tonumber(mi),
    tonumber(s))
  return t > now and t - now or 0
end


-- Seconds since the epoch of a UTC calendar time (H. Hinnant's days_from_civil).
function _M.unix_time(y, m, d, h, mi, s)
  if m <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + (h or 0) * 3600 + (mi or 0) * 60 + (s or 0)
end


-- The error for an HTTP response that is a failure. req: {service, method, path, url}.
function _M.from_response(req, res, now)
  local h = res.headers or {}
  local code, message = _M.parse_body(res.body)
  local retry_after = _M.retry_after(h["retry-after"], now)
  local kind, retryable, backoff = classify(req.service, res.status, code, message, retry_after)
  if not message or message == "" then
    message = REASONS[res.status] or ("HTTP " .. tostring(res.status))
  end
  return _M.new {
    status = res.status, service = req.service, method = req.method, path = req.path,
    url = req.url, code = code, message = message, kind = kind, retryable = retryable,
    backoff = backoff, retry_after = retry_after,
    request_id = h["x-openstack-request-id"] or h["x-compute-request-id"],
    body = type(res.body) == "string" and sub(res.body, 1, 2048) or nil,
  }
end


-- The error for a request that got no response: terr is the transport's {code, reason,
-- message} (or a string).
function _M.from_transport(req, terr)
  local reason, message
  if type(terr) == "table" then
    reason, message = str(terr.reason), str(terr.message)
  else
    message = str(terr)
  end
  return _M.new {
    status = 0, service = req.service, method = req.method, path = req.path, url = req.url,
    code = reason or "transport", message = _M.one_line(message or reason or "no response"),
    kind = "transient", retryable = true,
  }
end


-- Whether a transport error means the request never reached the server, so that even a
-- POST can be sent again.
function _M.not_sent(err)
  local s = lower((err.code or "") .. " " .. (err.message or ""))
  return find(s, "refused", 1, true) ~= nil or find(s, "resolve", 1, true) ~= nil
    or find(s, "couldn't connect", 1, true) ~= nil or find(s, "failed to connect", 1, true) ~= nil
end


-- The error for a request that could not be made (bad configuration, caller mistake).
function _M.invalid(fields, message)
  fields.message = message
  fields.kind = fields.kind or "invalid"
  fields.code = fields.code or "invalid"
  return _M.new(fields)
end


return _M
