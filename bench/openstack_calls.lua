-- bench/openstack_calls.lua: the Lua OpenStack library's cost per call against the real
-- services, for bench/bench_openstack.sh (which runs the same calls through openstacksdk).
-- Args: N (calls of each kind). Prints "lua <what> <seconds total> <calls>" lines.
local openstack = require "ks.openstack"
local config = require "ks.core.config"
local time = require "ks.core.time"

local n = tonumber((...)) or 100
local cloud = assert(openstack.connect({ clouds_yaml = config.get("clouds_yaml"),
                                         cloud = config.get("cloud"), rate = false }))
-- rate = false: the library limits itself to 10 requests/s by default (kind to shared
-- clouds); the benchmark measures the calls, not the limiter.
assert(cloud:request("network", "GET", "/networks", { query = { limit = "1" } })) -- token

local t0 = time.monotonic()
for _ = 1, n do
  assert(cloud:request("network", "GET", "/networks", { query = { limit = "20" } }))
end
print(string.format("lua list-networks %.4f %d", time.monotonic() - t0, n))

t0 = time.monotonic()
for _ = 1, n do
  assert(cloud:request("compute", "GET", "/flavors/detail"))
end
print(string.format("lua list-flavors %.4f %d", time.monotonic() - t0, n))

local m = math.max(1, math.floor(n / 5))
t0 = time.monotonic()
for i = 1, m do
  local body = assert(cloud:request("network", "POST", "/networks",
    { body = { network = { name = "bench-lua-" .. i } } }))
  assert(cloud:request("network", "DELETE", "/networks/" .. body.network.id, { expect = { 204 } }))
end
print(string.format("lua create-delete-network %.4f %d", time.monotonic() - t0, m))
print(string.format("lua requests %d", cloud.stats.requests))
