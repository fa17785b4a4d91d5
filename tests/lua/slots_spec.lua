-- Unit tests of ks.resource.slots: at most a number of holders per key, on the fake clock of
-- shim.core.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"

local slots


local function always() return true end


describe("ks.resource.slots", function()
  before_each(function()
    shim.reset()
    package.loaded["ks.resource.slots"] = nil
    slots = require "ks.resource.slots"
  end)

  it("gives out at most limit slots of a key, and a holder keeps its own", function()
    assert.is_true(slots.take("ns", "a", 2, always))
    assert.is_true(slots.take("ns", "b", 2, always))
    assert.same({ false, 2 }, { slots.take("ns", "c", 2, always) })
    assert.is_true(slots.take("ns", "a", 2, always))
    assert.is_true(slots.take("other", "c", 2, always))
  end)

  it("gives a released slot to the next", function()
    slots.take("ns", "a", 1, always)
    slots.release("ns", "a")
    slots.release("ns", "nobody")
    assert.is_true(slots.take("ns", "b", 1, always))
    assert.same(1, slots.held("ns"))
  end)

  it("counts the waiters: refused and not given a slot since, nor dropped", function()
    slots.take("ns", "a", 1, always)
    slots.take("ns", "b", 1, always)
    slots.take("ns", "c", 1, always)
    slots.release("ns", "b")
    assert.same(2, slots.waiting("ns"))
    slots.drop("ns", "c")
    slots.release("ns", "a")
    assert.is_true(slots.take("ns", "b", 1, always))
    assert.same(0, slots.waiting("ns"))
  end)

  it("takes back, when full, the slots of holders no longer on their way, at most every PRUNE s", function()
    local gone = {}
    local function still(name) return not gone[name] end
    slots.take("ns", "a", 1, still)
    assert.is_false(slots.take("ns", "b", 1, still))
    gone.a = true
    assert.is_false(slots.take("ns", "b", 1, still))
    shim.advance(slots.PRUNE)
    assert.is_true(slots.take("ns", "b", 1, still))
  end)

  it("names the longest waiters, as many as slots are free, oldest first", function()
    slots.take("ns", "a", 2, always)
    slots.take("ns", "b", 2, always)
    slots.take("ns", "c", 2, always)
    slots.take("ns", "d", 2, always)
    slots.take("ns", "e", 2, always)
    slots.take("ns", "c", 2, always)   -- asking again keeps its place
    assert.same({}, slots.next("ns"))
    slots.release("ns", "a")
    assert.same({ "c" }, slots.next("ns"))
    slots.release("ns", "b")
    assert.same({ "c", "d" }, slots.next("ns"))
    assert.is_true(slots.take("ns", "d", 2, always))
    assert.same({ "c" }, slots.next("ns"))
    assert.same({}, slots.next("other"))
  end)
end)
