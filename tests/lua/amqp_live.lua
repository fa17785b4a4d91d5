-- tests/lua/amqp_live.lua: ks.core.amqp (host/amqp.c: rabbitmq-c on a thread of its own)
-- against the RabbitMQ of tests/env/openstack, with Nova's own versioned notifications
-- (tests/env/openstack turns them on): what Nova publishes when a key pair is made and
-- when a server is created, stopped and deleted reaches a subscription, decoded.
--
--   eval "$(tests/env/openstack up)"     # prints KS_OS_AMQP_URL too
--   bin/kupenstack exec --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" --set cloud="$OS_CLOUD" \
--     tests/lua/amqp_live.lua "$KS_OS_AMQP_URL"
--
-- Prints TAP lines and "N passed, N failed"; exits 0 only when all passed. What it makes
-- is named ks-amqp-<random> and deleted.
local URL = ...
local amqp = require "ks.core.amqp"
local config = require "ks.core.config"
local json = require "ks.core.json"
local time = require "ks.core.time"
local openstack = require "ks.openstack"

local passed, failed = 0, 0
local tag = "ks-amqp-" .. string.format("%06x", math.random(0, 0xffffff))
  .. string.format("%x", math.floor(time.now() * 1000) % 0x1000000)

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

if not URL or URL == "" then
  print("not ok - amqp_live: no URL given (the first argument: $KS_OS_AMQP_URL)")
  print("0 passed, 1 failed")
  return 1
end

local admin = must(openstack.connect { clouds_yaml = config.get("clouds_yaml"),
  cloud = config.get("cloud") })
local sub
local seen = {} -- every notification read, in order: { event_type =, payload = }

-- The next notification whose event type is event_type and for which match(payload) is
-- true, reading at most `within` seconds; every one read is kept in `seen`.
local function wait_for(event_type, match, within)
  local deadline = time.monotonic() + (within or 60)
  while time.monotonic() < deadline do
    local body, key = sub:next(math.max(0.1, deadline - time.monotonic()))
    if body then
      local env = json.decode(body)
      local msg = env["oslo.message"] and json.decode(env["oslo.message"]) or env
      local n = { event_type = msg.event_type, payload = msg.payload, key = key }
      seen[#seen + 1] = n
      local data = n.payload and n.payload["nova_object.data"]
      if n.event_type == event_type and match(data or {}) then
        return n, data
      end
    elseif key.reason ~= "Timeout" then
      error(tostring(key))
    end
  end
  local types = {}
  for _, n in ipairs(seen) do
    types[#types + 1] = n.event_type
  end
  error("no " .. event_type .. " came; seen: " .. table.concat(types, ","))
end

check("a URL rabbitmq-c cannot parse is refused, naming the form", function()
  local s, err = amqp.subscribe { url = "http://nope", exchange = "nova", keys = { "x" } }
  expect(s == nil and err.reason == "InvalidConfiguration", "got", s, err)
  expect(tostring(err):match("amqp://user:password@host:port/vhost"), tostring(err))
end)

check("no routing keys is a caller bug", function()
  local ok, err = pcall(amqp.subscribe, { url = URL, exchange = "nova", keys = {} })
  expect(not ok and tostring(err):match("opts.keys must have 1 to"), tostring(err))
end)

-- Wait (reading, so the task yields) until pred(stats) or `within` seconds.
local function stats_until(s, pred, within)
  local deadline = time.monotonic() + within
  local st = s:stats()
  while not pred(st) and time.monotonic() < deadline do
    s:next(0.5)
    st = s:stats()
  end
  return st
end

check("a broker that is not there: connect failures counted and retried, the error says so",
  function()
    local s = must(amqp.subscribe { url = "amqp://guest:guest@127.0.0.1:1/", exchange = "nova",
      keys = { "k" } })
    local st = stats_until(s, function(x) return x.failures >= 2 end, 30)
    s:close()
    expect(st.failures >= 2 and not st.connected and st.connects == 0, "stats",
      st.failures, st.connected, st.connects)
    expect(st.error:match("^connect: "), st.error)
  end)

check("an exchange that does not exist: the passive declare fails, naming it, and is retried",
  function()
    local s = must(amqp.subscribe { url = URL, exchange = tag, keys = { "k" } })
    local st = stats_until(s, function(x) return x.failures >= 2 end, 30)
    s:close()
    expect(st.failures >= 2 and st.connects == 0, "stats", st.failures, st.connects)
    expect(st.error:match("^exchange") and st.error:match("NOT_FOUND") and
      st.error:find(tag, 1, true), st.error)
  end)

check("a subscription to Nova's versioned notifications connects", function()
  sub = must(amqp.subscribe { url = URL, exchange = "nova",
    keys = { "versioned_notifications.info", "versioned_notifications.error" } })
  local deadline = time.monotonic() + 60
  while not sub:stats().connected and time.monotonic() < deadline do
    sub:next(0.5)
  end
  local st = sub:stats()
  expect(st.connected and st.connects == 1, "connected", st.connected, st.connects, st.error)
end)

check("keypair.create.end names the key pair made through Nova's API", function()
  must(admin:request("compute", "POST", "/os-keypairs",
    { body = { keypair = { name = tag } }, expect = { 200, 201 } }))
  local ok, _, data = pcall(wait_for, "keypair.create.end", function(d) return d.name == tag end)
  admin:request("compute", "DELETE", "/os-keypairs/" .. tag)
  expect(ok, _)
  expect(data.name == tag, data.name)
end)

local server_id
check("instance.create.end, then power_off.end, instance.update to ERROR and delete.end, name the server", function()
  local image = must(admin:request("image", "POST", "/images", { body = {
    name = tag, disk_format = "raw", container_format = "bare" }, expect = { 201 } }))
  must(admin:request("image", "PUT", "/images/" .. image.id .. "/file", {
    body = string.rep("x", 1024), headers = { ["Content-Type"] = "application/octet-stream" },
    expect = { 204 } }))
  local flavor
  for _, f in ipairs(must(admin:request("compute", "GET", "/flavors")).flavors) do
    flavor = f.name == "m1.tiny" and f.id or flavor
  end
  local body = must(admin:request("compute", "POST", "/servers", {
    microversion = "2.37",
    body = { server = { name = tag, imageRef = image.id, flavorRef = must(flavor, "no m1.tiny"),
      networks = "none" } }, expect = { 202 } }))
  server_id = body.server.id
  local _, data = wait_for("instance.create.end", function(d) return d.uuid == server_id end)
  expect(data.state == "active", "state", data.state)
  must(admin:request("compute", "POST", "/servers/" .. server_id .. "/action",
    { body = { ["os-stop"] = json.null }, expect = { 202 } }))
  _, data = wait_for("instance.power_off.end", function(d) return d.uuid == server_id end)
  expect(data.power_state == "shutdown" or data.state == "stopped", "after stop",
    data.state, data.power_state)
  -- A server gone to ERROR (here by an admin's reset-state, as the tests break servers) is
  -- told only with [notifications] notify_on_state_change set (tests/env/openstack: vm_state)
  must(admin:request("compute", "POST", "/servers/" .. server_id .. "/action",
    { body = { ["os-resetState"] = { state = "error" } }, expect = { 202 } }))
  wait_for("instance.update", function(d) return d.uuid == server_id and d.state == "error" end)
  must(admin:request("compute", "DELETE", "/servers/" .. server_id, { expect = { 204 } }))
  wait_for("instance.delete.end", function(d) return d.uuid == server_id end)
  admin:request("image", "DELETE", "/images/" .. image.id)
end)

check("stats count what was read, nothing dropped", function()
  local st = sub:stats()
  expect(st.messages >= #seen and #seen >= 4, "messages", st.messages, #seen)
  expect(st.dropped == 0, "dropped", st.dropped)
end)

check("at most 4 subscriptions are open at once: a fifth is refused until one closes", function()
  local more = {}
  for i = 1, 3 do
    more[i] = must(amqp.subscribe { url = URL, exchange = "nova", keys = { "ks.cap" } })
  end
  local fifth, err = amqp.subscribe { url = URL, exchange = "nova", keys = { "ks.cap" } }
  expect(fifth == nil and err and err.reason == "LimitExceeded", "a fifth", tostring(err))
  more[1]:close()
  more[1] = must(amqp.subscribe { url = URL, exchange = "nova", keys = { "ks.cap" } })
  for i = 1, 3 do
    more[i]:close()
  end
end)

check("after close, next() raises", function()
  sub:close()
  local ok, err = pcall(sub.next, sub, 0)
  expect(not ok and tostring(err):match("closed"), tostring(err))
end)

print(string.format("%d passed, %d failed", passed, failed))
return failed == 0 and 0 or 1
