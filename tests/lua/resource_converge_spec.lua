-- Unit tests of ks.resource.converge: recover, immutable, update and observe, once the
-- resource is in hand, on a scripted kind (def).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local rs = require "shim.resource"
local converge = require "ks.resource.converge"

local obj, ctx_of, said = rs.obj, rs.ctx_of, rs.said

local function kind_of(extra)
  local d = {
    kind = "Widget",
    observe = function(cur) return { size = cur.size }, cur.state or "available", "it is " .. cur.id end,
  }
  for k, v in pairs(extra or {}) do
    d[k] = v
  end
  return d
end


local function reason(res, t)
  for _, c in ipairs(res.conditions or {}) do
    if c.type == t then
      return c.status .. " " .. c.reason
    end
  end
end


describe("ks.resource.converge", function()
  it("observe available: the status (id, projectID, resource) and Available True", function()
    local res = converge.converge(kind_of(), {}, { id = "w1", tenant_id = "p1", size = 2 }, obj(), ctx_of(), {})
    assert.same({ id = "w1", projectID = "p1", resource = { size = 2 } }, res.status)
    assert.equal("True Success", reason(res, "Available"))
    assert.is_nil(res.requeue_after)
  end)

  it("observe error: ResourceError, looked at again in 60 s; progressing: polled", function()
    local res = converge.converge(kind_of(), {}, { id = "w1", state = "error" }, obj(), ctx_of(), {})
    assert.same({ "False ResourceError", "False ResourceError", 60 },
      { reason(res, "Available"), reason(res, "Progressing"), res.requeue_after })
    res = converge.converge(kind_of({ poll = 5 }), {}, { id = "w1", state = "progressing" }, obj(), ctx_of(), {})
    assert.same({ "True Progressing", 5 }, { reason(res, "Progressing"), res.requeue_after })
  end)

  it("an immutable field changed: terminal, the status and what OpenStack has kept", function()
    local d = kind_of({ immutable = function() return "size is immutable" end })
    local res = converge.converge(d, {}, { id = "w1", size = 1 }, obj(), ctx_of(), {})
    assert.same({ "size is immutable", true, { size = 1 } }, { res.error, res.terminal, res.status.resource })
    -- An adopted resource is observed, not checked.
    res = converge.converge(d, {}, { id = "w1", size = 1 }, obj(), ctx_of(), {}, true)
    assert.is_nil(res.error)
  end)

  it("an update that changes: an Event, the updated resource observed", function()
    local d = kind_of({ update = function(_, cur) return { id = cur.id, size = 9 }, true end })
    local ctx = ctx_of()
    local res = converge.converge(d, {}, { id = "w1", size = 1 }, obj(), ctx, {})
    assert.same({ size = 9 }, res.status.resource)
    assert.same({ "Updated: updated Widget w1" }, said(ctx))
  end)

  it("no change: no Event; a failed update keeps the status; unmanaged is not updated", function()
    local ctx = ctx_of()
    converge.converge(kind_of({ update = function(_, cur) return cur, false end }), {},
      { id = "w1" }, obj(), ctx, {})
    assert.same({}, said(ctx))
    local res = converge.converge(kind_of({ update = function() return nil, "refused" end }), {},
      { id = "w1", project_id = "p" }, obj(), ctx_of(), {})
    assert.same({ "refused", "Transient", { id = "w1", projectID = "p" } }, { res.error, res.reason, res.status })
    res = converge.converge(kind_of({ update = function() error("not for unmanaged") end }), {},
      { id = "w1" }, obj({ managementPolicy = "unmanaged" }), ctx_of(), {})
    assert.equal("True Success", reason(res, "Available"))
  end)

  it("recover: a result returned as it is, the status filled in; or the resource to go on with", function()
    local d = kind_of({ recover = function() return nil, { error = "rebuilding" } end })
    local res = converge.converge(d, {}, { id = "w1", size = 1 }, obj(), ctx_of(), {})
    assert.same({ error = "rebuilding", status = { id = "w1", resource = { size = 1 } } }, res)
    d = kind_of({ recover = function() return { id = "w2", size = 3 } end })
    assert.same({ id = "w2", resource = { size = 3 } },
      converge.converge(d, {}, { id = "w1" }, obj(), ctx_of(), {}).status)
    -- An import is never recovered.
    res = converge.converge(d, {}, { id = "w1" }, obj({ import = { id = "w1" } }), ctx_of(), {}, true)
    assert.equal("w1", res.status.id)
  end)
end)
