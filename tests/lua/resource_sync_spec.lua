-- Unit tests of ks.resource.sync: what to set and remove so that a map or a set in
-- OpenStack matches the spec, and the loop that applies it.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local sync = require "ks.resource.sync"
local errors = require "ks.openstack.errors"


describe("ks.resource.sync", function()
  describe("map", function()
    it("the keys to set (sorted) and those to remove, the kept ones left", function()
      local set, unset = sync.map({ a = "1", b = "2", mark = "u", old = "x", zz = "y" },
        { b = "3", a = "1", c = "4" }, { mark = true })
      assert.same({ "b", "c" }, set)
      assert.same({ "old", "zz" }, unset)
    end)

    it("a spec that does not say (want nil) changes nothing", function()
      assert.same({ {}, {} }, { sync.map({ a = "1" }, nil) })
    end)

    it("removable: only those keys may go (the rest of have is not the map's)", function()
      local set, unset = sync.map({ name = "n", p = "1", q = "2" }, { name = "n" }, nil, { p = "1", q = "2" })
      assert.same({}, set)
      assert.same({ "p", "q" }, unset)
    end)
  end)

  describe("set", function()
    it("the members to add and to remove, in their lists' order", function()
      assert.same({ { "c", "a" }, { "b", "d" } }, { sync.set({ "b", "x", "d" }, { "c", "x", "a" }) })
      -- want's order, not have's, for what is added
      assert.same({ { "z", "y" }, {} }, { sync.set({}, { "z", "y" }) })
      assert.same({ {}, {} }, { sync.set({ "a" }, { "a" }) })
    end)
  end)

  describe("apply", function()
    it("adds then removes; whether anything was asked", function()
      local asked = {}
      local function rec(what)
        return function(x)
          asked[#asked + 1] = what .. " " .. x
          return true
        end
      end
      assert.is_true(sync.apply({ "a" }, { "b", "c" }, rec("add"), rec("remove")))
      assert.same({ "add a", "remove b", "remove c" }, asked)
      -- Only removes is a change too.
      assert.is_true(sync.apply({}, { "d" }, rec("add"), rec("remove")))
      assert.is_false(sync.apply({}, {}, rec("add"), rec("remove")))
    end)

    it("stops at the first error, returning it", function()
      local asked = 0
      local function fail(x)
        asked = asked + 1
        return nil, "no " .. x
      end
      assert.same({ nil, "no a" }, { sync.apply({ "a", "b" }, { "c" }, fail, fail) })
      assert.equal(1, asked)
    end)

    it("done: true unless there is an error; done_or_gone: not found is done too", function()
      local gone = errors.new({ kind = "not_found", status = 404, message = "gone" })
      assert.is_true(sync.done(nil, nil))
      assert.same({ nil, "boom" }, { sync.done(nil, "boom") })
      assert.is_true(sync.done_or_gone(nil, gone))
      assert.same({ nil, "boom" }, { sync.done_or_gone(nil, "boom") })
      assert.is_nil((sync.done(nil, gone)))
    end)
  end)
end)
