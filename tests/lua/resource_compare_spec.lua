-- Unit tests of ks.resource.compare: diff, pick, has, and equal with JSON null.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local json = require "ks.core.json"
local compare = require "ks.resource.compare"


describe("ks.resource.compare", function()
  describe("equal: JSON values at any depth", function()
    it("compares scalars by value and tables key by key", function()
      assert.is_true(compare.equal(1, 1))
      assert.is_false(compare.equal(1, "1"))
      assert.is_true(compare.equal({ a = { 1, 2 }, b = "x" }, { b = "x", a = { 1, 2 } }))
      assert.is_false(compare.equal({ a = { 1, 2 } }, { a = { 2, 1 } }))
    end)

    it("a key missing on either side differs", function()
      assert.is_false(compare.equal({ a = 1 }, { a = 1, b = 2 }))
      assert.is_false(compare.equal({ a = 1, b = 2 }, { a = 1 }))
    end)

    it("JSON null equals only null: not nil, not an empty object, not false", function()
      assert.is_true(compare.equal(json.null, json.null))
      assert.is_true(compare.equal({ a = json.null }, { a = json.null }))
      assert.is_false(compare.equal(json.null, {}))
      assert.is_false(compare.equal({}, json.null))
      assert.is_false(compare.equal(json.null, nil))
      assert.is_false(compare.equal(json.null, false))
      assert.is_false(compare.equal({ a = json.null }, {}))
      assert.is_false(compare.equal({ a = {} }, { a = json.null }))
    end)
  end)

  describe("diff, pick, has", function()
    it("diff: only the wanted fields that differ, among keys; nil when none do", function()
      local have = { name = "a", size = 1, tags = { "x" }, extra = 9 }
      assert.is_nil(compare.diff({ name = "a", size = 1 }, have, { "name", "size" }))
      assert.same({ size = 2 }, compare.diff({ name = "a", size = 2 }, have, { "name", "size" }))
      assert.same({ tags = { "y" } }, compare.diff({ tags = { "y" } }, have, { "tags" }))
      -- Tables compare by content: the spec's own list equal to OpenStack's is no change.
      assert.is_nil(compare.diff({ tags = { "x" } }, have, { "tags" }))
      -- Keys not listed, and keys the spec leaves unset, are never changed.
      assert.is_nil(compare.diff({ extra = 1 }, have, { "name" }))
      assert.is_nil(compare.diff({}, have, { "name", "size" }))
    end)

    it("diff: a null the spec asks for differs from a value, and not from null", function()
      assert.same({ description = json.null },
        compare.diff({ description = json.null }, { description = "d" }, { "description" }))
      assert.is_nil(compare.diff({ description = json.null }, { description = json.null },
        { "description" }))
    end)

    it("pick: the listed keys that are set", function()
      assert.same({ a = 1, c = false }, compare.pick({ a = 1, b = 2, c = false }, { "a", "c", "d" }))
    end)

    it("has: whether a list holds a value; a nil list holds nothing", function()
      assert.is_true(compare.has({ "a", "b" }, "b"))
      assert.is_false(compare.has({ "a" }, "b"))
      assert.is_false(compare.has(nil, "a"))
    end)
  end)
end)
