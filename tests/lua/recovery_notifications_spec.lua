-- Unit tests of ks.recovery.notifications: a Nova notification (oslo envelope) maps to
-- the Instances whose status.id it names, asked of the cache by status_id (a stub here).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"

local asked
package.loaded["ks.core.kube"] = {
  list = function(res, opts)
    asked = { kind = res.kind, opts = opts }
    if opts.status_id == "srv-1" then
      return { { metadata = { namespace = "ns", name = "vm" } } }
    end
    return {}
  end,
}
package.loaded["ks.recovery.notifications"] = nil
local json = require "ks.core.json"
local n = require "ks.recovery.notifications"
local poll = require "ks.resource.poll"


local function envelope(event_type, uuid)
  return { ["oslo.version"] = "2.0", ["oslo.message"] = json.encode({
    event_type = event_type, payload = { ["nova_object.data"] = { uuid = uuid } } }) }
end


describe("ks.recovery.notifications", function()
  local map = n.consumer("kupenstack.io", "v1alpha1", "Instance").map

  before_each(function() asked = nil end)

  it("maps a server's update to its Instance, through the status_id index", function()
    assert.same({ "ns/vm" }, map(envelope("instance.update", "srv-1")))
    assert.same({ kind = "Instance", opts = { status_id = "srv-1" } }, asked)
  end)

  it("maps a deletion and a power-off too", function()
    assert.same({ "ns/vm" }, map(envelope("instance.delete.end", "srv-1")))
    assert.same({ "ns/vm" }, map(envelope("instance.power_off.end", "srv-1")))
  end)

  -- A list taken as the power-off began still says ACTIVE: the reconcile a notification
  -- enqueues must not read it (it did, and a server stopped behind our back stayed so).
  it("a notified server is not read from a list taken before the notification", function()
    local cloud = { project_id = function() return "p1" end }
    local lists = 0
    local function list()
      lists = lists + 1
      return { { id = "srv-1", status = "ACTIVE" } }
    end
    shim.advance(1)
    assert.equal("ACTIVE", poll.get("Instance", cloud, "srv-1", list, 60).status)
    assert.equal("ACTIVE", poll.get("Instance", cloud, "srv-1", list, 60).status)
    assert.equal(1, lists)
    shim.advance(1)
    map(envelope("instance.power_off.end", "srv-1"))
    assert.is_nil(poll.get("Instance", cloud, "srv-1", list, 60))
  end)

  it("maps a server no Instance has to nothing", function()
    assert.same({}, map(envelope("instance.update", "other")))
  end)

  it("ignores other events and what is not a notification, without asking", function()
    assert.same({}, map(envelope("keypair.create.end", "srv-1")))
    assert.same({}, map("not json"))
    assert.same({}, map({ ["oslo.message"] = "{broken" }))
    assert.is_nil(asked)
  end)
end)
