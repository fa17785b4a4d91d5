-- ks/openstack/transport.lua: one OpenStack HTTP exchange with the client-side rate
-- limit, the retries and the counting: send() returns the response of a success, or the
-- classified error of the last attempt.
--
-- Retried here (at most `retries` times, exponential backoff with jitter):
--   no response (connection refused, reset, timeout)  idempotent methods; any method when
--                                                     the request was never sent
--   502, 503, 504                                     idempotent methods
--   409 on a resource in a transitional state         idempotent methods
--   429, and 413 that is not a quota                  any method (the request was refused,
--                                                     not done), after Retry-After
-- A Retry-After longer than max_retry_after is not waited for: the error is returned with
-- err.backoff set. Quota errors are never retried here (see errors.lua).
local time = require "ks.core.time"
local log = require "ks.core.log"
local errors = require "ks.openstack.errors"

local ipairs = ipairs
local min = math.min
local max = math.max
local random = math.random


local _M = {}


local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }


-- A token bucket: rate requests per second, at most burst at once; nil rate: no limit.
-- Kept as a schedule (GCRA): tat is the moment the bucket would be empty again were
-- requests sent at exactly the rate; a request may go once tat is less than burst
-- intervals ahead of now.
function _M.bucket(rate, burst)
  if not rate or rate <= 0 then
    return nil
  end
  burst = burst or rate
  if burst < 1 then
    burst = 1
  end
  return { rate = rate, burst = burst, tau = (burst - 1) / rate, tat = time.monotonic(),
           paused_until = 0 }
end


-- Wait for a turn. Each caller reserves the next free moment and sleeps until it, so
-- waiters go in the order they came, each woken once. One that wakes inside a
-- Retry-After pause that came while it slept reserves again, after the pause: the
-- waiters wake in order, so they keep their order behind it.
local function take(b)
  local now = time.monotonic()
  while true do
    local at = max(now, b.paused_until, b.tat - b.tau)
    b.tat = max(b.tat, at) + 1 / b.rate
    if at > now then
      time.sleep(at - now)
      now = time.monotonic()
    end
    if now >= b.paused_until then
      return
    end
  end
end


local function pause(b, seconds)
  local t = time.monotonic() + seconds
  if t > b.paused_until then
    b.paused_until = t
  end
end


-- Seconds before attempt n + 1 (n >= 1): base * 2^(n-1), at most cap, the upper half
-- jittered ("equal jitter").
function _M.backoff(n, base, cap, jitter)
  local d = min(cap, base * 2 ^ (n - 1))
  if jitter then
    d = d / 2 + random() * d / 2
  end
  return d
end


local function success(req, status)
  if req.expect then
    for _, s in ipairs(req.expect) do
      if s == status then
        return true
      end
    end
    return false
  end
  return status >= 200 and status < 300
end


-- Whether to try err again, and after how many seconds (nil: the usual backoff).
local function retry_plan(req, err, opts)
  local idempotent = req.idempotent
  if idempotent == nil then
    idempotent = IDEMPOTENT[req.method] or false
  end
  local s = err.status
  if s == 0 then
    return idempotent or errors.not_sent(err), nil
  end
  if s == 429 or (s == 413 and err.kind == "transient") then
    local wait = err.retry_after or err.backoff
    if wait and wait > opts.max_retry_after then
      return false
    end
    return true, wait
  end
  if s == 502 or s == 503 or s == 504 then
    local wait = err.retry_after
    if wait and wait > opts.max_retry_after then
      return false
    end
    return idempotent, wait
  end
  if err.kind == "conflict" and err.retryable then
    return idempotent, nil
  end
  return false
end


local function count(stats, service)
  stats.requests = stats.requests + 1
  stats.by_service[service] = (stats.by_service[service] or 0) + 1
end


local function unexpected(req, res)
  local err = errors.from_response(req, res, time.now())
  if res.status >= 200 and res.status < 400 then
    err.kind, err.retryable = "terminal", false
    err.message = "unexpected status " .. res.status .. " (" .. err.message .. ")"
  end
  return err
end


-- Send req {service, method, url, path, headers, body, timeout, expect, idempotent, reauth
-- (a 401 will be answered with a new token: log it quietly), changes_nothing (a POST that
-- only reads, as a login: a dry run sends it)} through
-- opts.transport; opts: {transport, bucket, stats, retries, backoff_base, backoff_cap,
-- max_retry_after, jitter, ca_file, cert_file, key_file}. Returns res {status, headers,
-- body} of a success, or nil and an error.
function _M.send(req, opts)
  local attempt = 0
  while true do
    attempt = attempt + 1
    if opts.bucket then
      take(opts.bucket)
    end
    count(opts.stats, req.service)
    local res, terr = opts.transport {
      method = req.method, url = req.url, headers = req.headers, body = req.body,
      timeout = req.timeout, ca_file = opts.ca_file, cert_file = opts.cert_file,
      key_file = opts.key_file, changes_nothing = req.changes_nothing,
    }
    local err
    if not res then
      err = errors.from_transport(req, terr)
    elseif success(req, res.status) then
      res.headers = res.headers or {}
      res.request_id = res.headers["x-openstack-request-id"] or res.headers["x-compute-request-id"]
      res.url = req.url
      return res
    else
      err = unexpected(req, res)
    end
    local again, wait = retry_plan(req, err, opts)
    if not again or attempt > opts.retries then
      err.attempts = attempt
      local level = "warn"
      if err.kind == "not_found" or (err.status == 401 and req.reauth) then
        level = "debug"   -- often expected; a 401 that gets a new token is no failure yet
      end
      log[level]("openstack request failed", { service = req.service, method = req.method,
        path = req.path, status = err.status, kind = err.kind, code = err.code,
        request_id = err.request_id, attempts = attempt, message = err.message })
      return nil, err
    end
    wait = wait or _M.backoff(attempt, opts.backoff_base, opts.backoff_cap, opts.jitter)
    if opts.bucket and (err.status == 429 or err.status == 413 or err.retry_after) then
      pause(opts.bucket, wait)
    end
    opts.stats.retries = opts.stats.retries + 1
    log.info("openstack request retried", { service = req.service, method = req.method,
      path = req.path, status = err.status, code = err.code, request_id = err.request_id,
      attempt = attempt, wait = wait })
    time.sleep(wait)
  end
end


return _M
