-- tests/lua/openstack_faults.lua: what ks.openstack does with the faults of a real
-- deployment, injected by tests/env/faultproxy.py between the library and the real Nova
-- of tests/env/openstack. Run by tests/e2e/openstack_faults.sh, or by hand:
--
--   port=$(tests/env/faultproxy.py & ...)      # it prints its port
--   bin/kupenstack exec tests/lua/openstack_faults.lua http://127.0.0.1:$port [N RATE BURST]
--
-- Starts nothing: the proxy's URL is the first argument; the script points the proxy at
-- Nova (the catalog's endpoint) and the handles it tests at the proxy (endpoint_override),
-- so that Keystone is asked directly and every compute request crosses the proxy. Each
-- check sets the next fault, makes requests, and asserts what the caller got (a success
-- or a classified error), how long it took, and what the proxy saw. The last check puts
-- N (1000) calls in flight at once (ks.core.script.gather) through a bucket of RATE (50)
-- requests/s, burst BURST (10). The clouds.yaml comes from the host (ks.core.config:
-- clouds_yaml and cloud, given with --set-file and --set). Prints TAP lines and "N passed, N failed"; exits 0
-- only when all passed.
local config = require "ks.core.config"
local time = require "ks.core.time"
local http = require "ks.core.http"
local json = require "ks.core.json"
local script = require "ks.core.script"
local openstack = require "ks.openstack"

local PROXY, N, RATE, BURST = ...
if not PROXY or not PROXY:match("^http://") then
  error("usage: openstack_faults.lua http://127.0.0.1:PORT [N RATE BURST]", 0)
end
PROXY = PROXY:gsub("/+$", "")
N, RATE, BURST = tonumber(N) or 1000, tonumber(RATE) or 50, tonumber(BURST) or 10
local CLOUDS = config.get("clouds_yaml")
local CLOUD = config.get("cloud")
local passed, failed = 0, 0


local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name .. " # " .. tostring(err):gsub("\n", " "))
  end
end


-- Raise unless cond; the message says what was seen.
local function expect(cond, ...)
  if not cond then
    local parts = {}
    for i = 1, select("#", ...) do
      parts[#parts + 1] = tostring((select(i, ...)))
    end
    error(table.concat(parts, " "), 2)
  end
  return cond
end


local function must(v, err)
  if v == nil then
    error(tostring(err), 2)
  end
  return v
end


-- A call to the proxy's control API: the decoded answer.
local function ctl(method, path, body)
  local res, err = http.request { method = method, url = PROXY .. path, timeout = 10,
    headers = { ["Content-Type"] = "application/json" }, body = body and json.encode(body) }
  must(res, "faultproxy " .. path .. ": " .. tostring(err))
  expect(res.status == 200, "faultproxy", path, res.status, res.body)
  return json.decode(res.body)
end


-- Zero the proxy's counters and set the fault of the next requests.
local function fault(mode, count, extra)
  ctl("POST", "/_reset")
  local f = { mode = mode, count = count }
  for k, v in pairs(extra or {}) do
    f[k] = v
  end
  ctl("POST", "/_fault", f)
end


local function stats()
  return ctl("GET", "/_stats")
end


-- The handles under test share one transport function, hence one session (one token)
-- of their own, not the default one's; retries 3 unless opts say otherwise, short
-- backoffs (0.1-0.2 s, then 0.2-0.4 s, ...), no rate limit unless asked for.
local function transport(req)
  return http.request(req)
end


local function proxied(opts)
  local o = { clouds_yaml = CLOUDS, cloud = CLOUD, transport = transport, rate = false,
    endpoint_override = { compute = PROXY .. "/v2.1" }, backoff_base = 0.2, backoff_cap = 2 }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  return must(openstack.connect(o))
end


-- Seconds fn() took, then what it returned.
local function timed(fn)
  local t0 = time.monotonic()
  local a, b = fn()
  return time.monotonic() - t0, a, b
end


-- A timing, printed for the record: a TAP comment, not a check (a loaded machine is slow).
local function bench(what, dt)
  print(string.format("# bench: %s: %.3f s", what, dt))
end


local function flavors(c, opts)
  return timed(function()
    return c:request("compute", "GET", "/flavors", opts)
  end)
end


-- The proxy forwards to the catalog's Nova.
local admin = must(openstack.connect { clouds_yaml = CLOUDS, cloud = CLOUD })
local nova, nova_root = admin:endpoint("compute")
must(nova, nova_root)
ctl("POST", "/_upstream", { url = nova_root })
local c = proxied()
must(c:auth())   -- the token first: Keystone is not behind the proxy


check("pass: a request through the proxy reaches Nova", function()
  fault("pass", 0)
  local _, body, res = flavors(c)
  expect(body and type(body.flavors) == "table" and res.status == 200, "flavors", body, res)
  expect(res.url:find(PROXY, 1, true) == 1, "sent to", res.url)
  local s = stats()
  expect(s.requests == 1 and s.passed == 1, "proxy saw", s.requests, s.passed)
end)

check("503 without Retry-After: retried with backoff, then the answer", function()
  fault("503", 2)
  local retries = c.stats.retries
  local dt, body = flavors(c)
  expect(body and type(body.flavors) == "table", "no success after two 503s")
  local s = stats()
  expect(s.faults["503"] == 2 and s.requests == 3, "proxy saw", s.requests, "requests,",
    s.faults["503"], "503s")
  expect(c.stats.retries == retries + 2, "retries", c.stats.retries - retries)
  -- Two backoffs of at least 0.1 and 0.2 s (equal jitter): not sent again at once.
  expect(dt >= 0.3, "took", dt)
  bench("503 twice, backoff 0.2 s", dt)
end)

check("503 with Retry-After: 1: waits about 1 s (not the 10 ms backoff), then the answer",
  function()
    local quick = proxied { backoff_base = 0.01 }
    fault("503-retry-after", 1, { retry_after = 1 })
    local dt, body = flavors(quick)
    expect(body and type(body.flavors) == "table", "no success after a 503")
    expect(dt >= 0.9, "took", dt)
    bench("503 with Retry-After: 1", dt)
    local s = stats()
    expect(s.faults["503-retry-after"] == 1 and s.requests == 2, "proxy saw", s.requests)
  end)

check("429 with Retry-After: 1: waits about 1 s, then the answer", function()
  local quick = proxied { backoff_base = 0.01 }
  fault("429", 1, { retry_after = 1 })
  local dt, body = flavors(quick)
  expect(body and type(body.flavors) == "table", "no success after a 429")
  expect(dt >= 0.9, "took", dt)
  bench("429 with Retry-After: 1", dt)
  local s = stats()
  expect(s.faults["429"] == 1 and s.requests == 2, "proxy saw", s.requests)
end)

check("429 without Retry-After, no retries left: transient, retryable, backoff 5 s, "
  .. "returned before that backoff passed", function()
  fault("429", 1, { retry_after = json.null })
  -- Beside the call, a sleep of the backoff the error names (5 s), started with it: the
  -- call, which must not sleep it, returns first.
  local order = {}
  local res = script.gather {
    function()
      local r = { flavors(c, { retries = 0 }) }
      order[#order + 1] = "call"
      return r
    end,
    function()
      time.sleep(5)
      order[#order + 1] = "sleep"
    end,
  }
  local dt, body, err = res[1].value[1], res[1].value[2], res[1].value[3]
  expect(body == nil and openstack.is_error(err), "not an error", body, err)
  expect(err.status == 429 and err.kind == "transient" and err.retryable and err.backoff == 5,
    "classified", err.status, err.kind, err.retryable, err.backoff)
  expect(err.request_id == "req-faultproxy-1" and err.attempts == 1, "id", err.request_id,
    "attempts", err.attempts)
  expect(order[1] == "call", "the 5 s sleep ended before the call returned, after", dt, "s")
  bench("429 without Retry-After, no retries", dt)
end)

check("more 503s than the retry budget: the last one, classified, with its request id",
  function()
    fault("503", 10)
    local _, body, err = flavors(c, { retries = 2 })
    expect(body == nil and openstack.is_error(err), "not an error", body, err)
    expect(err.status == 503 and err.kind == "transient" and err.retryable == true,
      "classified", err.status, err.kind, err.retryable)
    expect(err.attempts == 3 and err.request_id == "req-faultproxy-3", "attempts",
      err.attempts, "request id", err.request_id)
    expect(err.service == "compute" and err.method == "GET" and err.path == "/flavors",
      "where", err.service, err.method, err.path)
    expect(err.message == "faultproxy: injected 503 #3", "message", err.message)
    expect(tostring(err) == "compute GET /flavors: 503 Service Unavailable: faultproxy: "
      .. "injected 503 #3", "tostring", tostring(err))
    local s = stats()
    expect(s.requests == 3 and s.faults["503"] == 3, "proxy saw", s.requests)
  end)

check("503 on a POST: not sent again (it may have been done), reported", function()
  fault("503", 5)
  local _, body, err = timed(function()
    return c:request("compute", "POST", "/flavors", { body = { flavor = {
      name = "ks-faults-never", ram = 64, vcpus = 1, disk = 0 } } })
  end)
  expect(body == nil and err.status == 503 and err.retryable and err.attempts == 1,
    "error", err)
  expect(stats().requests == 1, "proxy saw", stats().requests)
end)

check("connection reset: retried, then the answer", function()
  fault("reset", 1)
  local retries = c.stats.retries
  local _, body = flavors(c)
  expect(body and type(body.flavors) == "table", "no success after a reset")
  local s = stats()
  expect(s.faults.reset == 1 and s.requests == 2, "proxy saw", s.requests)
  expect(c.stats.retries == retries + 1, "retries", c.stats.retries - retries)
end)

check("connection reset past the budget: a transport error, transient", function()
  fault("reset", 10)
  local _, body, err = flavors(c, { retries = 1 })
  expect(body == nil and openstack.is_error(err), "not an error", body, err)
  expect(err.status == 0 and err.code == "ConnectionReset" and err.kind == "transient"
    and err.retryable and err.attempts == 2, "classified", err.status, err.code, err.kind,
    err.attempts)
  expect(stats().requests == 2, "proxy saw", stats().requests)
end)

check("connection reset on a POST: not sent again, reported", function()
  fault("reset", 5)
  local body, err = c:request("compute", "POST", "/flavors", { body = { flavor = {
    name = "ks-faults-never", ram = 64, vcpus = 1, disk = 0 } } })
  expect(body == nil and err.status == 0 and err.code == "ConnectionReset"
    and err.attempts == 1, "error", err)
  expect(stats().requests == 1, "proxy saw", stats().requests)
end)

check("no answer: a timeout after the request's 1 s, transient, the connection closed",
  function()
    fault("hang", 1)
    local dt, body, err = flavors(c, { timeout = 1, retries = 0 })
    expect(body == nil and openstack.is_error(err), "not an error", body, err)
    expect(err.status == 0 and err.code == "Timeout" and err.kind == "transient"
      and err.retryable and err.attempts == 1, "classified", err.status, err.code, err.kind)
    expect(dt >= 0.9, "took", dt)
    bench("no answer, timeout 1 s", dt)
    -- The client hung up: the proxy saw the close (not its own 60 s limit).
    local s
    for _ = 1, 300 do
      s = stats()
      if #s.hangs_closed_by_client == 1 then
        break
      end
      time.sleep(0.1)
    end
    expect(#s.hangs_closed_by_client == 1, "the client did not hang up",
      json.encode(s.hangs_closed_by_client))
  end)

check("no answer, then one: the retry after the timeout gets it", function()
  fault("hang", 1)
  local dt, body = flavors(c, { timeout = 1, retries = 1 })
  expect(body and type(body.flavors) == "table", "no success after a timeout")
  expect(dt >= 0.9, "took", dt)
  bench("no answer, then one, timeout 1 s", dt)
  expect(stats().requests == 2, "proxy saw", stats().requests)
end)

check(string.format("rate limit: %d concurrent calls through %g requests/s, burst %d", N, RATE,
  BURST), function()
  -- A session of its own (another transport function): its own bucket, full at start.
  -- The transport notes when each request leaves, past the bucket.
  local sent, counting = {}, false
  local limited = must(openstack.connect { clouds_yaml = CLOUDS, cloud = CLOUD,
    transport = function(req)
      if counting then
        sent[#sent + 1] = time.monotonic()
      end
      return http.request(req)
    end, rate = RATE, burst = BURST,
    endpoint_override = { compute = PROXY .. "/v2.1" } })
  must(limited:auth())
  time.sleep(BURST / RATE)   -- the token took one; a full bucket again
  fault("pass", 0)
  counting = true
  local calls = {}
  for i = 1, N do
    calls[i] = function()
      local body, err = limited:request("compute", "GET", "/")   -- Nova's version document
      return body and body.version ~= nil or tostring(err)
    end
  end
  local t0 = time.monotonic()
  local dt, results = timed(function() return script.gather(calls) end)
  local done, first_bad = 0, nil
  for i = 1, N do
    if results[i].ok and results[i].value == true then
      done = done + 1
    else
      first_bad = first_bad or (results[i].error or results[i].value)
    end
  end
  local s = stats()
  local span = s.last - s.first
  print(string.format("# %d calls in %.2f s; proxy: %d requests over %.2f s (%.1f/s after the "
    .. "burst), at most %d in 1 s, %d in 2 s, %d in flight at once", N, dt, s.requests, span,
    (s.requests - BURST) / span, s.max_in_1s, s.max_in_2s, s.max_inflight))
  expect(done == N, done, "of", N, "succeeded; first failure:", first_bad)
  expect(s.requests == N and #sent == N, "proxy saw", s.requests, "sent", #sent)
  -- What the bucket promises: the k-th request leaves no earlier than (k - BURST) / RATE
  -- after the start, less 0.1 s (its sleeps end by the loop's clock, which lags the real
  -- one by what the loop is doing; seen: 5 ms). A loaded machine only delays requests (and
  -- may bunch them at the proxy, whose windows above are printed, not checked).
  table.sort(sent)
  local early = 0
  for k = BURST + 1, N do
    local due = (k - BURST) / RATE
    early = math.max(early, due - (sent[k] - t0))
    expect(sent[k] - t0 >= due - 0.1, "request", k, "left", sent[k] - t0, "s after the start,"
      .. " before its turn at", due, "s")
  end
  print(string.format("# bench: rate limit: the earliest request left %.1f ms before its turn",
    early * 1000))
end)

print(passed .. " passed, " .. failed .. " failed")
return failed == 0 and 0 or 1
