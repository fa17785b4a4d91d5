-- Unit tests of ks.resource.poll: polls sharing one list of the project, on the fake clock of
-- shim.core and a list function that counts its calls.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"

local poll
local cloud = { project_id = function() return "p1" end }


-- A list function answering servers (a list of IDs, all BUILD) and counting its calls;
-- with yield set it yields first, as a request on the loop would.
local function lister(ids, yield)
  local l = { calls = 0 }
  function l.fn()
    l.calls = l.calls + 1
    if yield then
      coroutine.yield("request")
    end
    if not ids then
      return nil, "503"
    end
    local out = {}
    for i, id in ipairs(ids) do
      out[i] = { id = id, status = "BUILD" }
    end
    return out
  end
  return l
end


describe("ks.resource.poll", function()
  before_each(function()
    shim.reset()
    package.loaded["ks.resource.poll"] = nil
    poll = require "ks.resource.poll"
  end)

  it("answers the polls within ttl from one list", function()
    local l = lister { "a", "b" }
    assert.same({ id = "a", status = "BUILD" }, poll.get("Instance", cloud, "a", l.fn, 1))
    shim.advance(0.5)
    assert.same({ id = "b", status = "BUILD" }, poll.get("Instance", cloud, "b", l.fn, 1))
    assert.same(1, l.calls)
  end)

  it("lists again once the list is older than ttl", function()
    local l = lister { "a" }
    poll.get("Instance", cloud, "a", l.fn, 1)
    shim.advance(1.5)
    poll.get("Instance", cloud, "a", l.fn, 1)
    assert.same(2, l.calls)
  end)

  it("counts ttl from the list's answer, not from when it was asked for", function()
    local l = lister({ "a" }, true)
    shim.yield_on_sleep = true
    local slow = coroutine.create(function() poll.get("Instance", cloud, "a", l.fn, 1) end)
    coroutine.resume(slow)
    shim.advance(3)
    coroutine.resume(slow)
    shim.advance(0.5)
    poll.get("Instance", cloud, "a", l.fn, 1)
    assert.same(1, l.calls)
  end)

  it("keeps a list per kind", function()
    local l = lister { "a" }
    poll.get("Instance", cloud, "a", l.fn, 1)
    poll.get("Volume", cloud, "a", l.fn, 1)
    assert.same(2, l.calls)
  end)

  it("keeps a list per list function: a list of some does not answer for all", function()
    local building, all = lister { "a" }, lister { "a", "b" }
    poll.get("Instance", cloud, "a", building.fn, 1)
    assert.same({ id = "b", status = "BUILD" }, poll.get("Instance", cloud, "b", all.fn, 1))
    assert.same(1, building.calls)
    assert.same(1, all.calls)
  end)

  it("does not answer for a resource written to after the list was asked for", function()
    local l = lister { "a", "b" }
    poll.get("Instance", cloud, "a", l.fn, 1)
    shim.advance(0.1)
    poll.wrote("Instance", "a")
    assert.is_nil(poll.get("Instance", cloud, "a", l.fn, 1))
    assert.is_not_nil(poll.get("Instance", cloud, "b", l.fn, 1))
    shim.advance(1.5)
    assert.is_not_nil(poll.get("Instance", cloud, "a", l.fn, 1))
  end)

  it("does not answer for a resource the list does not hold", function()
    assert.is_nil(poll.get("Instance", cloud, "c", lister({ "a" }).fn, 1))
  end)

  it("does not answer when the list fails, and lists again at the next poll", function()
    local l = lister(nil)
    assert.is_nil(poll.get("Instance", cloud, "a", l.fn, 1))
    assert.is_nil(poll.get("Instance", cloud, "a", l.fn, 1))
    assert.same(2, l.calls)
  end)

  it("makes a poll wait for the list another task is fetching", function()
    local l = lister({ "a", "b" }, true)
    shim.yield_on_sleep = true
    local got = {}
    local first = coroutine.create(function() got.a = poll.get("Instance", cloud, "a", l.fn, 1) end)
    local second = coroutine.create(function() got.b = poll.get("Instance", cloud, "b", l.fn, 1) end)
    assert.same({ true, "request" }, { coroutine.resume(first) })
    assert.same({ true, "sleep" }, { coroutine.resume(second) })
    assert(coroutine.resume(first))
    assert(coroutine.resume(second))
    assert.same("dead", coroutine.status(second))
    assert.same({ "a", "b" }, { got.a.id, got.b.id })
    assert.same(1, l.calls)
  end)
end)
