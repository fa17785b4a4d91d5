-- Unit tests of ks.recovery.limit: the policy's defaults and checks, the window, the
-- backoff and the resets.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local limit = require "ks.recovery.limit"

local T0 = limit.parse_time("2026-12-07T00:00:00Z")


describe("ks.recovery.limit", function()
  it("parses and formats RFC 3339 UTC times", function()
    assert.equal(0, limit.parse_time("1970-01-01T00:00:00Z"))
    assert.equal(951782400, limit.parse_time("2000-02-29T00:00:00Z"))
    assert.equal("2026-12-07T00:00:00Z", limit.format_time(T0))
  end)

  it("gives the defaults, the window in seconds", function()
    assert.same({ onError = "Recreate", onShutoff = "Start", onDeleted = "Recreate",
                  maxRecoveries = 5, window = 3600 }, limit.policy({}))
  end)

  it("refuses a bad field, naming it", function()
    local p, err = limit.policy({ recoveryPolicy = { onError = "Reboot" } })
    assert.is_nil(p)
    assert.matches("spec.recoveryPolicy.onError", err, 1, true)
    p, err = limit.policy({ recoveryPolicy = { window = "1 hour" } })
    assert.is_nil(p)
    assert.matches("spec.recoveryPolicy.window", err, 1, true)
    p, err = limit.policy({ recoveryPolicy = { maxRecoveries = -1 } })
    assert.is_nil(p)
    assert.matches("spec.recoveryPolicy.maxRecoveries", err, 1, true)
  end)

  it("backs off 10 s doubling, capped", function()
    assert.same({ 10, 20, 40, 300 }, { limit.backoff(1), limit.backoff(2), limit.backoff(3),
                                       limit.backoff(10) })
  end)

  it("goes at once the first time, then waits out the backoff", function()
    local pol = limit.policy({ recoveryPolicy = { maxRecoveries = 3 } })
    local v, rec = limit.decide(nil, pol, T0, 1, nil)
    assert.equal("go", v)
    rec = limit.start(rec, "Recreate", "Error", "boom", T0)
    assert.same({ 1, 1, "Running", "boom" }, { rec.count, rec.recent, rec.state, rec.fault })
    local left
    v, rec, left = limit.decide(rec, pol, T0 + 4, 1, nil)
    assert.same({ "wait", 6 }, { v, left })
    v = limit.decide(rec, pol, T0 + 10, 1, nil)
    assert.equal("go", v)
  end)

  it("stops at maxRecoveries in the window, saying so once", function()
    local pol = limit.policy({ recoveryPolicy = { maxRecoveries = 2, window = "10m" } })
    local rec = {}
    for i = 1, 2 do
      local v
      v, rec = limit.decide(rec, pol, T0 + i * 100, 1, nil)
      assert.equal("go", v)
      rec = limit.start(rec, "Start", "Shutoff", nil, T0 + i * 100)
    end
    local v, first
    v, rec, first = limit.decide(rec, pol, T0 + 300, 1, nil)
    assert.same({ "limit", true }, { v, first })
    v, rec, first = limit.decide(rec, pol, T0 + 400, 1, nil)
    assert.same({ "limit", false }, { v, first })
    -- the window (from the first try, T0 + 100) is over at T0 + 700
    v = limit.decide(rec, pol, T0 + 700, 1, nil)
    assert.equal("go", v)
  end)

  it("starts the count again on a spec change or the reset annotation", function()
    local pol = limit.policy({ recoveryPolicy = { maxRecoveries = 1 } })
    local _, rec = limit.decide(nil, pol, T0, 1, nil)
    rec = limit.start(rec, "Recreate", "Deleted", nil, T0)
    assert.equal("limit", (limit.decide(rec, pol, T0 + 100, 1, nil)))
    assert.equal("go", (limit.decide(rec, pol, T0 + 100, 2, nil)))
    assert.equal("go", (limit.decide(rec, pol, T0 + 100, 1, "again")))
  end)
end)
