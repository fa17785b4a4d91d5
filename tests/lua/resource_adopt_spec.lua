-- Unit tests of ks.resource.adopt: how the resource of an object is come by (status.id,
-- spec.import, our tag, a create) on a scripted kind (def).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local rs = require "shim.resource"
local adopt = require "ks.resource.adopt"
local errors = require "ks.openstack.errors"

local ctx_of, said, kind_of = rs.ctx_of, rs.said, rs.holding


local function obj(spec, status)
  return rs.obj(spec, { status = status })
end



describe("ks.resource.adopt", function()
  before_each(function()
    shim.reset()
  end)

  it("uid_tag marks the resource made for an object by its UID", function()
    assert.equal("kupenstack-uid-u1", adopt.uid_tag(obj()))
  end)

  describe("find_unique", function()
    local d = kind_of({ a = { id = "a", name = "x" }, b = { id = "b", name = "y" },
                        c = { id = "c", name = "y" } })

    it("by id: it, or what to wait for when there is none", function()
      assert.equal("a", adopt.find_unique(d, {}, obj(), { id = "a" }).id)
      assert.same({ nil, nil, "no Widget with id z (spec.import.id)" },
        { adopt.find_unique(d, {}, obj(), { id = "z" }) })
    end)

    it("by filter: the one match; none waits; several are invalid, naming them", function()
      assert.equal("a", adopt.find_unique(d, {}, obj(), { filter = { name = "x" } }).id)
      assert.same({ nil, nil, "no Widget matches spec.import.filter" },
        { adopt.find_unique(d, {}, obj(), { filter = { name = "q" } }) })
      local _, err = adopt.find_unique(d, {}, obj(), { filter = { name = "y" } })
      assert.same({ kind = "invalid", message = "spec.import.filter matches 2 Widgets (b, c); "
        .. "it must match exactly one" }, err)
    end)
  end)

  describe("obtain", function()
    it("status.id's resource, without a create", function()
      local d, calls = kind_of({ a = { id = "a" } })
      local cur, early, adopted = adopt.obtain(d, {}, obj({}, { id = "a" }), ctx_of(), {})
      assert.same({ "a", nil, nil }, { cur.id, early, adopted })
      assert.same({ "get a" }, calls)
    end)

    it("status.id gone: a Drift Warning, and created again", function()
      local d, calls = kind_of({})
      local ctx = ctx_of()
      assert.equal("w1", adopt.obtain(d, {}, obj({}, { id = "a" }), ctx, {}).id)
      assert.same({ "get a", "find_own", "create" }, calls)
      assert.same({ "Drift: Widget a was deleted outside KupenStack; creating it again",
                    "Created: created Widget w1" }, said(ctx))
    end)

    it("status.id gone, imported or unmanaged: NotFound, looked at again in 60 s, not created", function()
      for _, spec in ipairs({ { import = { id = "a" } }, { managementPolicy = "unmanaged" } }) do
        local d, calls = kind_of({})
        local cur, early = adopt.obtain(d, {}, obj(spec, { id = "a" }), ctx_of(), {})
        assert.is_nil(cur)
        assert.same({ id = "a" }, early.status)
        assert.equal("NotFound", early.conditions[1].reason)
        assert.equal(60, early.requeue_after)
        assert.same({ "get a" }, calls)
      end
    end)

    it("status.id gone: def.gone may give one to adopt instead", function()
      local d, calls = kind_of({}, { gone = function() return { id = "other" } end })
      assert.equal("other", adopt.obtain(d, {}, obj({}, { id = "a" }), ctx_of(), {}).id)
      assert.same({ "get a" }, calls)
    end)

    it("an import is adopted, with an Event the first time", function()
      local d = kind_of({ a = { id = "a", name = "x" } })
      local ctx = ctx_of()
      local cur, _, adopted = adopt.obtain(d, {}, obj({ import = { filter = { name = "x" } } }), ctx, {})
      assert.same({ "a", true }, { cur.id, adopted })
      assert.same({ "Adopted: adopted Widget a" }, said(ctx))
      -- Once adopted, it is looked at by status.id: no Event again.
      ctx = ctx_of()
      local again = { adopt.obtain(d, {}, obj({ import = { filter = { name = "x" } } }, { id = "a" }), ctx, {}) }
      assert.same({ "a", nil, nil }, { again[1].id, again[2], again[3] })
      assert.same({}, said(ctx))
    end)

    it("an import that matches none waits import_retry seconds", function()
      local d = kind_of({})
      local ctx = ctx_of()
      ctx.config = { import_retry = 7 }
      local _, early = adopt.obtain(d, {}, obj({ import = { filter = { name = "x" } } }), ctx, {})
      assert.equal(7, early.requeue_after)
      assert.equal("no Widget matches spec.import.filter", early.conditions[1].message)
    end)

    it("unmanaged without an import is terminal", function()
      local _, early = adopt.obtain(kind_of({}), {}, obj({ managementPolicy = "unmanaged" }), ctx_of(), {})
      assert.is_true(early.terminal)
      assert.matches("set spec.import", early.error)
    end)

    it("ours found by the tag is adopted, not created again", function()
      local d, calls = kind_of({ t = { id = "t", tag = "kupenstack-uid-u1" } })
      local ctx = ctx_of()
      assert.equal("t", adopt.obtain(d, {}, obj(), ctx, {}).id)
      assert.same({ "find_own" }, calls)
      assert.matches("^Adopted: found Widget t", said(ctx)[1])
    end)

    it("a create without an answer: only looked for during the grace, then created again", function()
      local d, calls = kind_of({}, { create = function()
        return nil, errors.new({ kind = "transient", status = 0, message = "timed out" })
      end })
      local _, early = adopt.obtain(d, {}, obj(), ctx_of(), {})
      assert.equal("Transient", early.reason)
      _, early = adopt.obtain(d, {}, obj(), ctx_of(), {})
      assert.matches("got no answer 0 s ago", early.conditions[1].message)
      assert.same({ "find_own", "find_own" }, calls)
      shim.advance(adopt.UNANSWERED_GRACE)
      _, early = adopt.obtain(d, {}, obj(), ctx_of(), {})
      assert.equal("Transient", early.reason)
    end)
  end)
end)
