-- bench/openstack_concurrent.lua: requests per second of the Lua OpenStack library with C
-- requests in flight at once (ks.core.script.gather, one task per worker), for
-- bench/bench_openstack.sh (which runs the same through openstacksdk with C threads).
-- Args: TOTAL (requests per call kind), C (workers). Prints per call kind
-- "lua <what> <conc> <wall seconds> <requests> <p50 ms> <p99 ms>".
local openstack = require "ks.openstack"
local config = require "ks.core.config"
local script = require "ks.core.script"
local time = require "ks.core.time"

local total = tonumber((select(1, ...))) or 400
local conc = tonumber((select(2, ...))) or 8
local per = math.max(1, math.floor(total / conc))
-- rate = false: no client-side token bucket (the default is 10 requests/s per set of
-- credentials), so the figure is the library's and the services', not the limiter's.
local cloud = assert(openstack.connect({ clouds_yaml = config.get("clouds_yaml"),
                                         cloud = config.get("cloud"), rate = false }))
local token = assert(cloud:auth()).token
local subject = { ["X-Subject-Token"] = token }

local kinds = {
  { "validate-token", function()
      return cloud:request("identity", "GET", "/auth/tokens", { headers = subject })
    end },
  { "servers-detail", function()
      return cloud:request("compute", "GET", "/servers/detail")
    end },
}

local function pct(sorted, p)
  return sorted[math.max(1, math.ceil(p * #sorted))]
end

for _, k in ipairs(kinds) do
  local what, call = k[1], k[2]
  assert(call())   -- warm: endpoint, connection
  local lat = {}
  local workers = {}
  for w = 1, conc do
    workers[w] = function()
      local mine = {}
      for i = 1, per do
        local t = time.monotonic()
        assert(call())
        mine[i] = time.monotonic() - t
      end
      return mine
    end
  end
  local t0 = time.monotonic()
  local results = script.gather(workers)
  local wall = time.monotonic() - t0
  for w = 1, conc do
    local r = results[w]
    if not r.ok then
      error(what .. ": worker " .. w .. ": " .. tostring(r.error))
    end
    for _, v in ipairs(r.value) do
      lat[#lat + 1] = v
    end
  end
  table.sort(lat)
  print(string.format("lua %s %d %.4f %d %.2f %.2f", what, conc, wall, #lat,
    1000 * pct(lat, 0.5), 1000 * pct(lat, 0.99)))
end
