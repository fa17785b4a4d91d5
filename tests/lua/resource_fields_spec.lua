-- Unit tests of ks.resource.fields: JSON null as nil, the fields of a resource that are
-- set, what a spec.import.filter matches, and status.resource with what is gone nulled.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local json = require "ks.core.json"
local fields = require "ks.resource.fields"


describe("ks.resource.fields", function()
  it("value: JSON null is nil; \"\" too when empty is asked", function()
    assert.is_nil(fields.value(json.null))
    assert.equal("", fields.value(""))
    assert.is_nil(fields.value("", true))
    assert.equal(0, fields.value(0, true))
  end)

  it("present: the listed keys that are set, JSON null (and \"\" when asked) left out", function()
    local cur = { a = 1, b = json.null, c = "", d = false, e = "x" }
    assert.same({ a = 1, c = "", d = false }, fields.present(cur, { "a", "b", "c", "d" }))
    assert.same({ a = 1, d = false, e = "x" }, fields.present(cur, { "a", "b", "c", "d", "e" }, true))
  end)

  describe("matching", function()
    local items = {
      { id = "1", name = "a", tags = { "x", "y" }, ram = 512 },
      { id = "2", name = "a", tags = { "y" }, ram = 1024 },
      { id = "3", name = "b", ram = 512 },
    }
    local function ids(list)
      local out = {}
      for i, it in ipairs(list) do
        out[i] = it.id
      end
      return out
    end

    it("by name (the default key), every tag of the filter among the item's", function()
      assert.same({ "1", "2" }, ids(fields.matching(items, { name = "a" })))
      assert.same({ "1" }, ids(fields.matching(items, { name = "a", tags = { "x" } })))
      assert.same({ "1", "2" }, ids(fields.matching(items, { tags = { "y" } })))
      assert.same({}, ids(fields.matching(items, { tags = { "z" } })))
    end)

    it("the keys given, each only when the filter sets it; an empty filter matches all", function()
      assert.same({ "1", "3" }, ids(fields.matching(items, { ram = 512 }, { "name", "ram" })))
      assert.same({ "3" }, ids(fields.matching(items, { name = "b", ram = 512 }, { "name", "ram" })))
      -- A key not among keys is not looked at.
      assert.same({ "1", "2", "3" }, ids(fields.matching(items, { ram = 1 })))
      assert.same({ "1", "2", "3" }, ids(fields.matching(items, {})))
    end)
  end)

  it("observed: what the status had and the new fields lack becomes JSON null, at depth", function()
    local new = fields.observed({ a = 1, n = { x = 1 } }, { a = 0, b = 2, n = { x = 0, y = 3 } })
    assert.same({ a = 1, b = json.null, n = { x = 1, y = json.null } }, new)
  end)
end)
