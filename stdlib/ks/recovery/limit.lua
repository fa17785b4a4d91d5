-- ks/recovery/limit.lua: how often a broken resource is recovered, as Kubernetes limits a
-- pod's restarts: at most maxRecoveries within window, with an exponential backoff
-- between tries (BACKOFF seconds doubling, capped at BACKOFF_MAX). Pure functions, no
-- I/O: the caller passes the clock and keeps the record in the object's status.recovery:
--
--   count       recoveries ever started
--   lastAction  Rebuild | Recreate | Start
--   lastReason  Error | Shutoff | Deleted
--   lastTime    when the last one started (RFC 3339, UTC)
--   fault       Nova's fault message when the server was found in ERROR
--   recent      recoveries started since windowStart (the limit counts these)
--   windowStart when the window of `recent` began (RFC 3339)
--   state       Running (started, not yet Available again) | Done | Limited
--   generation  metadata.generation at the last decision: a spec change resets `recent`
--   reset       the annotation RESET_ANNOTATION's value then: changing it resets `recent`
local type = type
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local floor = math.floor
local min = math.min
local os_date = os.date


local _M = {}

_M.BACKOFF = 10
_M.BACKOFF_MAX = 300
_M.RESET_ANNOTATION = "kupenstack.io/reset-recovery"

local DEFAULTS = {
  onError = "Recreate", onShutoff = "Start", onDeleted = "Recreate",
  maxRecoveries = 5, window = "1h",
}
local CHOICES = {
  onError = { Rebuild = true, Recreate = true, None = true },
  onShutoff = { Start = true, None = true },
  onDeleted = { Recreate = true, None = true },
}
local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }


-- Seconds in a duration like "90s", "10m", "1h" or "2d"; nil when it is not one.
function _M.seconds(d)
  if type(d) ~= "string" then
    return nil
  end
  local n, unit = d:match("^(%d+)([smhd])$")
  if not n then
    return nil
  end
  return tonumber(n) * UNITS[unit]
end


-- spec.recoveryPolicy with its defaults, window in seconds; or nil and an error naming
-- the field.
function _M.policy(spec)
  local rp = (spec and spec.recoveryPolicy) or {}
  if type(rp) ~= "table" then
    return nil, "spec.recoveryPolicy must be an object"
  end
  local p = {}
  for k, v in pairs(DEFAULTS) do
    p[k] = rp[k] == nil and v or rp[k]
  end
  for k, ok in pairs(CHOICES) do
    if not ok[p[k]] then
      return nil, "spec.recoveryPolicy." .. k .. ": " .. tostring(p[k]) .. " is not one of the choices"
    end
  end
  local n = p.maxRecoveries
  if type(n) ~= "number" or n < 0 or n ~= floor(n) then
    return nil, "spec.recoveryPolicy.maxRecoveries must be a whole number >= 0"
  end
  local w = _M.seconds(p.window)
  if not w or w <= 0 then
    return nil, "spec.recoveryPolicy.window: " .. tostring(p.window)
      .. " is not a duration like 90s, 10m, 1h or 2d"
  end
  p.window = w
  return p
end


local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end


-- Unix seconds of an RFC 3339 UTC time ("2026-12-07T00:15:23Z"); nil if it is not one.
function _M.parse_time(s)
  if type(s) ~= "string" then
    return nil
  end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)")
  if not y then
    return nil
  end
  return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
end


function _M.format_time(t)
  return os_date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end


-- The wait after the n-th recovery of a window before the next (n >= 1).
function _M.backoff(n)
  return min(_M.BACKOFF * 2 ^ (n - 1), _M.BACKOFF_MAX)
end


local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do
    out[k] = v
  end
  return out
end


-- What to do about a resource found broken now: "go" (recover now), "wait" (backoff: the
-- third value is the seconds left), or "limit" (maxRecoveries reached: the third value is
-- true the first time, for the Warning Event). The second value is the record to write.
-- gen and reset are the object's metadata.generation and RESET_ANNOTATION value.
function _M.decide(rec, pol, now, gen, reset)
  rec = copy(rec)
  reset = reset or ""
  if (rec.generation ~= nil and rec.generation ~= gen) or (rec.reset or "") ~= reset then
    rec.recent, rec.windowStart = 0, nil
    if rec.state == "Limited" then
      rec.state = nil
    end
  end
  rec.generation, rec.reset = gen, reset
  local ws = _M.parse_time(rec.windowStart)
  if not ws or now - ws >= pol.window then
    rec.recent, rec.windowStart = 0, nil
    if rec.state == "Limited" then
      rec.state = nil
    end
  end
  local n = rec.recent or 0
  if n >= pol.maxRecoveries then
    local first = rec.state ~= "Limited"
    rec.state = "Limited"
    return "limit", rec, first
  end
  local last = _M.parse_time(rec.lastTime)
  if n > 0 and last and now < last + _M.backoff(n) then
    return "wait", rec, last + _M.backoff(n) - now
  end
  return "go", rec
end


-- rec (from decide's "go") with a recovery started now.
function _M.start(rec, action, reason, fault, now)
  rec = copy(rec)
  rec.count = (rec.count or 0) + 1
  rec.recent = (rec.recent or 0) + 1
  rec.windowStart = rec.windowStart or _M.format_time(now)
  rec.lastAction, rec.lastReason = action, reason
  rec.lastTime = _M.format_time(now)
  rec.fault = fault or ""
  rec.state = "Running"
  return rec
end


return _M
