-- Unit tests of ks.resource.finalize: detach or delete, waiting while something uses the
-- resource, on a scripted kind (def) with the cloud stubbed out.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local rs = require "shim.resource"
local clouds = require "ks.resource.cloud"
local finalize = require "ks.resource.finalize"

local objects, ctx_of, said, NOT_FOUND, kind_of = rs.objects, rs.ctx_of, rs.said, rs.NOT_FOUND,
  rs.holding


local function obj(spec, status)
  return rs.obj(spec, { status = status })
end



describe("ks.resource.finalize", function()
  local cloud_for = clouds.cloud_for
  before_each(function()
    rs.clear()
    clouds.cloud_for = function() return {} end
  end)
  after_each(function()
    clouds.cloud_for = cloud_for
  end)

  describe("on_delete", function()
    it("deletes what it made; detaches unmanaged and imported ones unless onDelete says", function()
      assert.equal("delete", (finalize.on_delete(obj())))
      assert.equal("detach", (finalize.on_delete(obj({ managementPolicy = "unmanaged",
        onDelete = "delete" }))))
      assert.same({ "detach", "imported, and onDelete is not delete" },
        { finalize.on_delete(obj({ import = { id = "x" } })) })
      assert.equal("delete", (finalize.on_delete(obj({ import = { id = "x" }, onDelete = "delete" }))))
      assert.same({ "detach", "onDelete: detach" }, { finalize.on_delete(obj({ onDelete = "detach" })) })
    end)
  end)

  it("deletes status.id's resource, with an Event", function()
    local d, calls = kind_of({ w1 = { id = "w1" } })
    local ctx = ctx_of()
    assert.same({}, finalize.finalize(d, obj({}, { id = "w1" }), ctx))
    assert.same({ "get w1", "delete w1" }, calls)
    assert.same({ "Deleted: deleted Widget w1" }, said(ctx))
  end)

  it("detach: an Event, the cloud not asked", function()
    clouds.cloud_for = function() error("the cloud was asked") end
    local d, calls = kind_of({ w1 = { id = "w1" } })
    local ctx = ctx_of()
    assert.same({}, finalize.finalize(d, obj({ onDelete = "detach" }, { id = "w1" }), ctx))
    assert.same({}, calls)
    assert.same({ "Detached: left Widget w1 in OpenStack (onDelete: detach)" }, said(ctx))
  end)

  it("no project any more, or nothing found (gone, or no id and none of ours): done", function()
    clouds.cloud_for = function() return nil, nil, "no project" end
    assert.same({}, finalize.finalize(kind_of({}), obj({}, { id = "w1" }), ctx_of()))
    clouds.cloud_for = function() return {} end
    local d, calls = kind_of({})
    assert.same({}, finalize.finalize(d, obj({}, { id = "w1" }), ctx_of()))
    assert.same({}, finalize.finalize(d, obj(), ctx_of()))
    assert.same({ "get w1", "find_own" }, calls)
  end)

  it("an imported object without an id looks for nothing of ours", function()
    local d, calls = kind_of({ own = { id = "own", tag = "kupenstack-uid-u1" } })
    assert.same({}, finalize.finalize(d, obj({ import = { id = "x" }, onDelete = "delete" }), ctx_of()))
    assert.same({}, calls)
  end)

  it("still used by an object of the namespace: waits, naming it, nothing deleted", function()
    objects.Instance = { { metadata = { name = "vm1", namespace = "ns", uid = "i1" },
                           spec = { widgetRef = { name = "n1" } } } }
    local d, calls = kind_of({ w1 = { id = "w1" } },
      { users = { { kind = "Instance", ref = "spec.widgetRef", says = "uses it" } } })
    local res = finalize.finalize(d, obj({}, { id = "w1" }), ctx_of())
    assert.equal(5, res.requeue_after)
    assert.matches("Instance vm1 uses it", res.conditions[1].message)
    assert.same({ "get w1" }, calls)
  end)

  it("a conflict waits; a delete already gone is done; being deleted, or async: Deleting", function()
    local d = kind_of({ w1 = { id = "w1" } }, { delete = function()
      return nil, { kind = "conflict", message = "in use by a port" } end })
    local res = finalize.finalize(d, obj({}, { id = "w1" }), ctx_of())
    assert.same({ "Waiting", 5 }, { res.conditions[1].reason, res.requeue_after })
    assert.matches("in use by a port", res.conditions[1].message)
    d = kind_of({ w1 = { id = "w1" } }, { delete = function() return nil, NOT_FOUND end })
    assert.same({}, finalize.finalize(d, obj({}, { id = "w1" }), ctx_of()))
    for _, extra in ipairs({ { deleting = function() return true end }, { async_delete = true } }) do
      res = finalize.finalize(kind_of({ w1 = { id = "w1" } }, extra), obj({}, { id = "w1" }), ctx_of())
      assert.same({ "Deleting", 2 }, { res.conditions[1].reason, res.requeue_after })
    end
  end)

  it("a failure to look is returned as one", function()
    local d = kind_of({}, { get = function() return nil, "connection refused" end })
    assert.same({ error = "connection refused", reason = "Transient" },
      finalize.finalize(d, obj({}, { id = "w1" }), ctx_of()))
  end)
end)
