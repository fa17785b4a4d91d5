-- Unit tests of ks.openstack.transport: retries, backoff, Retry-After, the rate limit and
-- the counters, on a scripted transport (sleeps are recorded by the fake clock, not slept).
-- Error bodies are real captured responses where the services gave us one; 502/503/429
-- answers are made up here (tests/env/openstack does not produce them on demand).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local fake = require "shim.fake_transport"
local R = require "fixtures.responses"
local transport = require "ks.openstack.transport"

local OK = fake.response(200, { ok = true })
local S503 = fake.response(503, "")


local function opts(t, extra)
  local o = { transport = t.transport, stats = { requests = 0, by_service = {}, retries = 0 },
    retries = 3, backoff_base = 0.5, backoff_cap = 8, max_retry_after = 60, jitter = false }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end


local function req(method, path, service)
  return { service = service or "network", method = method, path = path,
    url = "http://127.0.0.1:9696/v2.0" .. path, headers = {} }
end


describe("ks.openstack.transport", function()
  before_each(shim.reset)

  it("returns a success with its request id", function()
    local t = fake.new { { "GET", "/networks$", fake.response(200, { networks = {} },
      { ["x-openstack-request-id"] = "req-1" }) } }
    local res = assert(transport.send(req("GET", "/networks"), opts(t)))
    assert.same({ 200, "req-1" }, { res.status, res.request_id })
  end)

  it("retries a GET on 503 with doubling backoff, then succeeds", function()
    local t = fake.new { { "GET", "", S503 }, { "GET", "", S503 }, { "GET", "", OK } }
    local o = opts(t)
    assert(transport.send(req("GET", "/networks"), o))
    assert.same({ 0.5, 1 }, shim.sleeps)
    assert.same({ requests = 3, by_service = { network = 3 }, retries = 2 }, o.stats)
  end)

  it("gives up after `retries` retries with the last error, and logs it", function()
    local t = fake.new { { "GET", "", S503 }, { "GET", "", S503 }, { "GET", "", S503 },
      { "GET", "", fake.response(503, "", { ["x-openstack-request-id"] = "req-9" }) } }
    local res, err = transport.send(req("GET", "/networks"), opts(t))
    assert.is_nil(res)
    assert.same({ 503, "transient", true, 4 }, { err.status, err.kind, err.retryable, err.attempts })
    assert.same({ 0.5, 1, 2 }, shim.sleeps)
    local last = shim.logs[#shim.logs]
    assert.same({ "warn", "req-9", 503 }, { last.level, last.fields.request_id, last.fields.status })
  end)

  it("caps the backoff and jitters it within its upper half", function()
    assert.equal(8, transport.backoff(10, 0.5, 8, false))
    for n = 1, 6 do
      local full = transport.backoff(n, 0.5, 8, false)
      local d = transport.backoff(n, 0.5, 8, true)
      assert.is_true(d >= full / 2 and d <= full, "attempt " .. n .. ": " .. d)
    end
  end)

  it("does not retry a POST on 503 (it may have been done)", function()
    local t = fake.new { { "POST", "", S503 } }
    local _, err = transport.send(req("POST", "/networks"), opts(t))
    assert.same({ 503, true, 1 }, { err.status, err.retryable, err.attempts })
    assert.same({}, shim.sleeps)
  end)

  it("retries a POST whose request the service said it refused (429), after Retry-After", function()
    local t = fake.new { { "POST", "", fake.response(429, "", { ["retry-after"] = "3" }) },
      { "POST", "", OK } }
    assert(transport.send(req("POST", "/networks"), opts(t)))
    assert.same({ 3 }, shim.sleeps)
  end)

  it("waits a 503's Retry-After instead of its own backoff", function()
    local t = fake.new { { "GET", "", fake.response(503, "", { ["retry-after"] = "7" }) },
      { "GET", "", OK } }
    assert(transport.send(req("GET", "/networks"), opts(t)))
    assert.same({ 7 }, shim.sleeps)
  end)

  it("does not wait a Retry-After longer than max_retry_after: it returns it as backoff", function()
    local t = fake.new { { "GET", "", fake.response(429, "", { ["retry-after"] = "600" }) } }
    local _, err = transport.send(req("GET", "/networks"), opts(t))
    assert.same({ 429, 600, 600 }, { err.status, err.retry_after, err.backoff })
    assert.same({}, shim.sleeps)
  end)

  it("retries a GET whose connection was reset, not a POST", function()
    local reset = { code = 0, reason = "ConnectionReset",
      message = "GET http://127.0.0.1:9696/v2.0/networks: Recv failure: Connection reset by peer" }
    local t = fake.new { { "GET", "", fail = reset }, { "GET", "", OK } }
    assert(transport.send(req("GET", "/networks"), opts(t)))
    t = fake.new { { "POST", "", fail = reset } }
    local _, err = transport.send(req("POST", "/networks"), opts(t))
    assert.same({ 0, "ConnectionReset", "transient" }, { err.status, err.code, err.kind })
  end)

  it("retries a POST whose connection was refused (never sent)", function()
    local refused = { code = 0, reason = "ConnectionRefused",
      message = "POST http://127.0.0.1:9696/v2.0/networks: Failed to connect to 127.0.0.1 port 9696 "
        .. "after 0 ms: Couldn't connect to server" }
    local t = fake.new { { "POST", "", fail = refused }, { "POST", "", OK } }
    assert(transport.send(req("POST", "/networks"), opts(t)))
    assert.same({ 0.5 }, shim.sleeps)
  end)

  it("retries a POST marked idempotent (a token request)", function()
    local t = fake.new { { "POST", "", S503 }, { "POST", "", OK } }
    local r = req("POST", "/networks")
    r.idempotent = true
    assert(transport.send(r, opts(t)))
  end)

  it("retries Neutron's real NetworkInUse on DELETE, then succeeds", function()
    local t = fake.new { { "DELETE", "", R.neutron_network_in_use }, { "DELETE", "", fake.response(204, "") } }
    local res = assert(transport.send(req("DELETE", "/networks/n1"), opts(t)))
    assert.same({ 204, { 0.5 } }, { res.status, shim.sleeps })
  end)

  it("does not retry the real quota errors of Neutron, Nova and Cinder", function()
    for _, name in ipairs { "neutron_over_quota", "nova_quota_exceeded", "cinder_over_quota" } do
      shim.reset()
      local t = fake.new { { "PUT", "", R[name] } }
      local _, err = transport.send(req("PUT", "/x"), opts(t))
      assert.same({ "quota", true, 60, 1 }, { err.kind, err.retryable, err.backoff, err.attempts })
      assert.same({}, shim.sleeps)
    end
  end)

  it("does not retry a 404", function()
    local t = fake.new { { "GET", "", R.neutron_network_not_found } }
    local _, err = transport.send(req("GET", "/networks/x"), opts(t))
    assert.same({ "not_found", 1 }, { err.kind, err.attempts })
    assert.equal("debug", shim.logs[#shim.logs].level)
  end)

  it("fails a status outside `expect`, even a 2xx", function()
    local t = fake.new { { "POST", "", fake.response(200, { x = 1 }) } }
    local r = req("POST", "/networks")
    r.expect = { 201 }
    local _, err = transport.send(r, opts(t))
    assert.same({ 200, "terminal", false }, { err.status, err.kind, err.retryable })
    assert.truthy(err.message:find("^unexpected status 200"))
  end)

  it("holds requests to the rate: 2 a second, burst 2, five requests take 1.5 s", function()
    local script = {}
    for i = 1, 5 do
      script[i] = { "GET", "", OK }
    end
    local t = fake.new(script)
    local o = opts(t, { bucket = transport.bucket(2, 2) })
    local start = shim.clock.mono
    for _ = 1, 5 do
      assert(transport.send(req("GET", "/networks"), o))
    end
    assert.near(1.5, shim.clock.mono - start, 1e-9)
  end)

  -- Coroutines on one timeline: sleep yields its wake time, and the earliest sleeper
  -- (the first to sleep among equals) runs next with the clock set to it. Returns what
  -- each coroutine's request was answered at, in the order the requests were sent.
  local function timeline(n, bucket, between)
    local sent, sleepers, seq, sleeps = {}, {}, 0, 0
    local real_sleep = shim.time.sleep
    shim.time.sleep = function(s)
      sleeps = sleeps + 1
      coroutine.yield(shim.clock.mono + s)
    end
    local function transport_fn(r)
      sent[#sent + 1] = { who = tonumber(r.url:match("/(%d+)$")), at = shim.clock.mono }
      return { status = 200, headers = { ["content-type"] = "application/json" }, body = "{}" }
    end
    local start = shim.clock.mono
    local function run(co, arg)
      local ok, wake = coroutine.resume(co, arg)
      assert(ok, wake)
      if coroutine.status(co) ~= "dead" then
        seq = seq + 1
        sleepers[#sleepers + 1] = { co = co, wake = wake, seq = seq }
      end
    end
    for i = 1, n do
      run(coroutine.create(function()
        assert(transport.send(req("GET", "/networks/" .. i), opts({ transport = transport_fn }, { bucket = bucket })))
      end))
      if between then
        between(i)
      end
    end
    while #sleepers > 0 do
      table.sort(sleepers, function(a, b)
        if a.wake ~= b.wake then
          return a.wake < b.wake
        end
        return a.seq < b.seq
      end)
      local s = table.remove(sleepers, 1)
      if s.wake > shim.clock.mono then
        shim.advance(s.wake - shim.clock.mono)
      end
      run(s.co)
    end
    shim.time.sleep = real_sleep
    for _, x in ipairs(sent) do
      x.at = x.at - start
    end
    return sent, sleeps
  end

  it("lets waiters go in the order they came, at the rate, each woken once", function()
    local sent, sleeps = timeline(6, transport.bucket(2, 2))
    local who, at = {}, {}
    for i, x in ipairs(sent) do
      who[i], at[i] = x.who, x.at
    end
    assert.same({ 1, 2, 3, 4, 5, 6 }, who)
    assert.same({ 0, 0, 0.5, 1, 1.5, 2 }, at)
    assert.equal(4, sleeps)   -- the first two went at once
  end)

  it("keeps the waiters' order behind a Retry-After pause that comes while they wait", function()
    local b = transport.bucket(1, 1)
    local sent = timeline(4, b, function(i)
      if i == 4 then   -- the first went at 0, 2..4 are waiting: the cloud says wait 10 s
        b.paused_until = shim.clock.mono + 10
      end
    end)
    local who = {}
    for i, x in ipairs(sent) do
      who[i] = x.who
      if i > 1 then
        assert.is_true(x.at >= 10)
      end
    end
    assert.same({ 1, 2, 3, 4 }, who)
  end)

  it("makes every request of the cloud wait out a 429's Retry-After", function()
    local b = transport.bucket(100, 100)
    local t = fake.new { { "GET", "", fake.response(429, "", { ["retry-after"] = "4" }) }, { "GET", "", OK } }
    local before = shim.clock.mono
    assert(transport.send(req("GET", "/networks"), opts(t, { bucket = b })))
    assert.near(before + 4, b.paused_until, 1e-9)
  end)

  it("has no bucket when the rate is off", function()
    assert.is_nil(transport.bucket(false))
    assert.is_nil(transport.bucket(0))
  end)
end)
