-- Unit tests of ks.recovery.server: what is done to a broken server, in what order, with
-- Nova, Neutron and the fault points stubbed (the real ones: tests/e2e/recovery.sh).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local json = require "ks.core.json"

local calls, servers, ports
local function log(...) calls[#calls + 1] = table.concat({ ... }, " ") end

package.loaded["ks.core.fault"] = { point = function(kind, p) log("point", kind, p) end }
package.loaded["ks.resource.poll"] = { wrote = function() end }
package.loaded["ks.openstack"] = {
  is_not_found = function(err) return type(err) == "table" and err.code == 404 end,
}
package.loaded["ks.resource"] = {
  uid_tag = function(obj) return "kupenstack-uid-" .. obj.metadata.uid end,
  failed = function(err) return { error = tostring(err and err.message or err) } end,
  terminal = function(msg) return { error = msg, terminal = true } end,
}
package.loaded["ks.openstack.nova"] = {
  servers = function(_, q)
    log("list", q.tags)
    local out = {}
    for _, s in pairs(servers) do
      out[#out + 1] = s
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
  end,
  server_delete = function(_, id)
    log("delete", id)
    servers[id] = nil
    return true
  end,
  server_action = function(_, id, name, args)
    log("action", id, name, args.imageRef)
    return true
  end,
  server_get = function(_, id) return servers[id] end,
}
package.loaded["ks.recovery.server"] = nil
local recovery = require "ks.recovery.server"
local addresses = require "ks.recovery.addresses"

local cloud = {
  request = function(_, _, method, path, opts)
    local id = path:match("^/ports/(.+)$")
    if method == "GET" then
      return { port = ports[id] }
    end
    log("port", method, id, opts.body.port.device_id)
    ports[id].device_id = opts.body.port.device_id
    return { port = ports[id] }
  end,
}

local def = {
  create = function(_, obj)
    log("create", obj.metadata.name)
    servers["new"] = { id = "new", status = "BUILD" }
    return servers["new"]
  end,
  find_own = function()
    return nil
  end,
}


local function instance(policy, status)
  return { metadata = { name = "vm", namespace = "ns", uid = "u1", generation = 1,
                        annotations = {} },
           spec = { recoveryPolicy = policy, networks = { { portRef = { name = "p" } } } },
           status = status or { id = "old", conditions = {
             { type = "Available", status = "True", observedGeneration = 1 } } } }
end


local function ctx()
  local c = { events = {} }
  c.event = function(t, reason) c.events[#c.events + 1] = t .. " " .. reason end
  return c
end


local deps = { image = "img", networks = { { port = "p1" } } }


describe("ks.recovery.server", function()
  before_each(function()
    shim.reset()
    calls = {}
    servers = { old = { id = "old", status = "ERROR", fault = { message = "boom" } } }
    ports = { p1 = { id = "p1", device_id = "old" } }
  end)

  it("recreates a server in ERROR: port freed, new one made, only then the old one deleted", function()
    local c = ctx()
    local cur = recovery.recover(def)(cloud, servers.old, instance(), c, deps)
    assert.equal("new", cur.id)
    assert.same({ "list kupenstack-uid-u1", "point Instance recovery-found",
      "port PUT p1 ", "point Instance recovery-detached", "create vm",
      "point Instance recovery-posted", "delete old", "point Instance recovery-deleted" }, calls)
    assert.same({ count = 1, lastAction = "Recreate", lastReason = "Error", fault = "boom",
                  state = "Running" },
      { count = c.recovery.count, lastAction = c.recovery.lastAction,
        lastReason = c.recovery.lastReason, fault = c.recovery.fault, state = c.recovery.state })
    assert.same({ "Normal RecoveryStarted", "Normal Recreated" }, c.events)
  end)

  it("after a crash past the create, adopts the new server and deletes the old, not counted again", function()
    servers.new = { id = "new", status = "ACTIVE" }
    local c = ctx()
    local cur = recovery.recover(def)(cloud, servers.old, instance(), c, deps)
    assert.equal("new", cur.id)
    assert.same({ "list kupenstack-uid-u1", "delete old", "point Instance recovery-deleted" }, calls)
    assert.is_nil(c.recovery)
  end)

  it("does not adopt a broken server of an earlier try: deletes it, and recreates", function()
    servers.older = { id = "older", status = "ERROR" }
    local cur = recovery.recover(def)(cloud, servers.old, instance(), ctx(), deps)
    assert.equal("new", cur.id)
    assert.same({ "list kupenstack-uid-u1", "delete older", "point Instance recovery-found" },
      { calls[1], calls[2], calls[3] })
    assert.is_nil(servers.older)
    assert.is_nil(servers.old)
  end)

  it("rebuilds in place with onError Rebuild", function()
    local c = ctx()
    local cur = recovery.recover(def)(cloud, servers.old, instance({ onError = "Rebuild" }), c, deps)
    assert.equal("old", cur.id)
    assert.same({ "list kupenstack-uid-u1", "point Instance recovery-found",
                  "action old rebuild img" }, calls)
  end)

  it("onError Rebuild of a volume-booted server: recreated, the broken server deleted first", function()
    local c = ctx()
    local vdeps = { volume = "v1", networks = { { uuid = "n1" } } }
    local cur, res = recovery.recover(def)(cloud, servers.old, instance({ onError = "Rebuild" }), c,
      vdeps)
    assert.is_nil(cur)
    assert.same({ "list kupenstack-uid-u1", "point Instance recovery-found", "delete old",
                  "point Instance recovery-deleted" }, calls)
    assert.same({ "Recovering", "old", 3 },
      { res.conditions[1].reason, res.status.id, res.requeue_after })
    assert.truthy(res.conditions[1].message:find("its boot volume v1 is wanted", 1, true))
    assert.same({ "Recreate", "Error", "Running" },
      { c.recovery.lastAction, c.recovery.lastReason, c.recovery.state })
    assert.same({ "Normal RecoveryStarted", "Normal RecoveryStarted" }, c.events)
    -- the next reconcile finds it gone: the create goes on, not counted again
    local obj = instance({ onError = "Rebuild" })
    obj.status.recovery = c.recovery
    local c2 = ctx()
    assert.same({ nil, nil }, { recovery.gone(def)(cloud, obj, c2) })
    assert.same({ {}, nil }, { c2.events, c2.recovery })
  end)

  it("a server Nova shows DELETED (its row not yet gone) or deleting is waited for: nothing judged or done", function()
    local dead = { id = "old", status = "DELETED", ["OS-EXT-STS:task_state"] = json.null }
    servers = { old = dead }
    local c = ctx()
    local cur, res = recovery.recover(def)(cloud, dead, instance({ onError = "Rebuild" }), c, deps)
    assert.is_nil(cur)
    assert.same({ "Deleting", 3 }, { res.conditions[1].reason, res.requeue_after })
    assert.same({ "list kupenstack-uid-u1" }, calls)
    assert.same({ {}, nil }, { c.events, c.recovery })
    -- so is one being deleted (its volumes detached already), whatever its status
    local going = { id = "old", status = "ACTIVE", ["OS-EXT-STS:task_state"] = "deleting" }
    cur, res = recovery.recover(def)(cloud, going, instance(), c, deps)
    assert.is_nil(cur)
    assert.same({ "Deleting", 3 }, { res.conditions[1].reason, res.requeue_after })
  end)

  it("a server long in deleting is looked at less often, and reported stuck once past DELETE_STUCK", function()
    local limit = require "ks.recovery.limit"
    local now = require("ks.core.time").now() -- the shim's clock
    local function going(age)
      return { id = "old", status = "ACTIVE", ["OS-EXT-STS:task_state"] = "deleting",
               ["OS-EXT-SRV-ATTR:host"] = "compute-9", updated = limit.format_time(now - age) }
    end
    local function look(age, obj)
      servers = { old = going(age) }
      local c = ctx()
      local _, res = recovery.recover(def)(cloud, servers.old, obj or instance(), c, deps)
      return res, c
    end
    local res = look(0)
    assert.same({ "Deleting", 3 }, { res.conditions[1].reason, res.requeue_after })
    res = look(120)
    assert.equal("Deleting", res.conditions[1].reason)
    assert.is_true(res.requeue_after >= 30 and res.requeue_after <= 31)
    local c
    res, c = look(recovery.DELETE_STUCK + 5)
    assert.same({ "DeleteStuck", 60 }, { res.conditions[1].reason, res.requeue_after })
    assert.matches("compute%-9", res.conditions[1].message)
    assert.same({ "Warning DeleteStuck" }, c.events)
    -- reported once: the next look, with the condition already DeleteStuck, sends none
    local obj = instance()
    obj.status.conditions = { { type = "Available", status = "False", reason = "DeleteStuck",
                                observedGeneration = obj.metadata.generation } }
    res, c = look(recovery.DELETE_STUCK + 65, obj)
    assert.same({ "DeleteStuck", 60 }, { res.conditions[1].reason, res.requeue_after })
    assert.same({}, c.events)
  end)

  describe("the fixed IPs of the ports Nova made", function()
    local seen = { ["net-a"] = {
      { addr = "fd00::5", version = 6, ["OS-EXT-IPS:type"] = "fixed" },
      { addr = "10.0.0.5", version = 4, ["OS-EXT-IPS:type"] = "fixed" },
      { addr = "203.0.113.9", version = 4, ["OS-EXT-IPS:type"] = "floating" } } }
    local function ndeps()
      return { image = "img", networks = { { uuid = "n1", name = "net-a" },
        { uuid = "n2", name = "net-b" }, { uuid = "n1", name = "net-a", fixed_ip = "10.0.0.7" } } }
    end

    it("a server in ERROR: the broken one deleted first, its IPv4 address kept in status.recovery", function()
      servers.old.addresses = seen
      local c, d = ctx(), ndeps()
      local cur, res = recovery.recover(def)(cloud, servers.old, instance(), c, d)
      assert.is_nil(cur)
      assert.same({ "list kupenstack-uid-u1", "point Instance recovery-found", "delete old",
                    "point Instance recovery-deleted" }, calls)
      assert.truthy(res.conditions[1].message:find("its fixed IPs 10.0.0.5 (on the ports Nova made", 1, true))
      assert.same({ "10.0.0.5", "", "" }, c.recovery.addresses)
      -- the next reconcile finds it gone: the create asks for the address again
      local obj = instance()
      obj.status.recovery = c.recovery
      local d2 = ndeps()
      assert.same({ nil, nil }, { recovery.gone(def)(cloud, obj, ctx(), d2) })
      assert.same({ { uuid = "n1", fixed_ip = "10.0.0.5" }, { uuid = "n2" },
                    { uuid = "n1", fixed_ip = "10.0.0.7" } }, addresses.networks(d2))
    end)

    it("a server deleted behind our back: made again with the addresses last seen", function()
      local obj = instance()
      obj.status.resource = { addresses = seen }
      local c, d = ctx(), ndeps()
      assert.same({ nil, nil }, { recovery.gone(def)(cloud, obj, c, d) })
      assert.same({ "10.0.0.5", "", "" }, c.recovery.addresses)
      assert.same("10.0.0.5", addresses.networks(d)[1].fixed_ip)
    end)

    it("an address taken since: said (AddressLost), and the create tried without it", function()
      local obj = instance()
      obj.status.resource = { addresses = seen }
      local c, d = ctx(), ndeps()
      recovery.gone(def)(cloud, obj, c, d)
      assert.is_false(addresses.taken(d, { status = 400, message = "Invalid input" }))
      assert.is_true(addresses.taken(d, { status = 400,
        message = "Fixed IP address 10.0.0.5 is already in use on instance x." }))
      assert.same({ "Normal RecoveryStarted", "Warning AddressLost" }, c.events)
      assert.same({ { uuid = "n1" }, { uuid = "n2" }, { uuid = "n1", fixed_ip = "10.0.0.7" } },
        addresses.networks(d))
      assert.is_false(addresses.taken(d, { status = 400, message = "already in use" }))
    end)

    it("nothing is kept for a Port object's port (it is moved) or without addresses", function()
      local c = ctx()
      local cur = recovery.recover(def)(cloud, servers.old, instance(), c, deps)
      assert.equal("new", cur.id) -- made beside the broken one, as before
      assert.equal(require("ks.core.json").null, c.recovery.addresses)
    end)
  end)

  it("does nothing with onError None", function()
    local cur = recovery.recover(def)(cloud, servers.old, instance({ onError = "None" }), ctx(), deps)
    assert.equal("old", cur.id)
    assert.same({ "list kupenstack-uid-u1" }, calls)
  end)

  it("stops at the limit: RecoveryLimit, a Warning once, nothing done", function()
    local st = instance().status
    st.recovery = { count = 1, recent = 1, windowStart = "2026-12-07T00:00:00Z",
                    lastTime = "2026-12-07T00:00:00Z", generation = 1, reset = "" }
    shim.clock.wall = 1796602200 -- 2026-12-07T00:10:00Z, in the window
    local c = ctx()
    local cur, res = recovery.recover(def)(cloud, servers.old,
      instance({ maxRecoveries = 1 }, st), c, deps)
    assert.is_nil(cur)
    assert.equal("RecoveryLimit", res.conditions[1].reason)
    assert.same({ "Warning RecoveryLimit" }, c.events)
    assert.same({ "list kupenstack-uid-u1" }, calls)
  end)

  it("waits out the backoff after a recent try: Recovering, requeued", function()
    local st = instance().status
    st.recovery = { count = 1, recent = 1, windowStart = "2026-12-07T00:09:55Z",
                    lastTime = "2026-12-07T00:09:55Z", generation = 1, reset = "" }
    shim.clock.wall = 1796602200
    local cur, res = recovery.recover(def)(cloud, servers.old, instance({}, st), ctx(), deps)
    assert.is_nil(cur)
    assert.same({ "Recovering", 5 }, { res.conditions[1].reason, res.requeue_after })
  end)

  it("with onShutoff None, reports a server found SHUTOFF and does not start it", function()
    local off = { id = "old", status = "SHUTOFF", ["OS-EXT-STS:task_state"] = json.null }
    local c = ctx()
    local cur, res = recovery.recover(def)(cloud, off, instance({ onShutoff = "None" }), c, deps)
    assert.is_nil(cur)
    assert.equal("Shutoff", res.conditions[1].reason)
    assert.same({ "Warning Shutoff" }, c.events)
  end)

  it("with onShutoff Start, counts the start and lets the update start it", function()
    local off = { id = "old", status = "SHUTOFF" }
    local c = ctx()
    local cur = recovery.recover(def)(cloud, off, instance(), c, deps)
    assert.equal(off, cur)
    assert.same({ "Start", "Shutoff" }, { c.recovery.lastAction, c.recovery.lastReason })
  end)

  it("counts a SHUTOFF seen after the power-off itself (a notification's look: ACTIVE, powering-off)", function()
    -- The look in between wrote Available False (progressing) and the server ACTIVE: the
    -- start is a recovery all the same, counted, with its Event (the bench saw such
    -- stops started with neither).
    local off = { id = "old", status = "SHUTOFF" }
    local obj = instance(nil, { id = "old",
      resource = { status = "ACTIVE", ["OS-EXT-STS:task_state"] = "powering-off" },
      conditions = { { type = "Available", status = "False", reason = "Progressing",
                       observedGeneration = 1 } } })
    local c = ctx()
    assert.equal(off, recovery.recover(def)(cloud, off, obj, c, deps))
    assert.same({ "Start", "Shutoff" }, { c.recovery.lastAction, c.recovery.lastReason })
  end)

  it("a SHUTOFF after a spec change is not a failure", function()
    local off = { id = "old", status = "SHUTOFF" }
    local obj = instance()
    obj.metadata.generation = 2
    local c = ctx()
    assert.equal(off, recovery.recover(def)(cloud, off, obj, c, deps))
    assert.is_nil(c.recovery)
  end)

  it("with onDeleted None, reports the deletion and makes nothing", function()
    servers = {}
    local c = ctx()
    local own, res = recovery.gone(def)(cloud, instance({ onDeleted = "None" }), c)
    assert.is_nil(own)
    assert.same({ "Deleted", "old" }, { res.conditions[1].reason, res.status.id })
    assert.same({ "Warning Deleted" }, c.events)
  end)

  it("with onDeleted Recreate, counts it and lets the create go on", function()
    local c = ctx()
    local own, res = recovery.gone(def)(cloud, instance(), c)
    assert.same({ nil, nil }, { own, res })
    assert.same({ "Recreate", "Deleted" }, { c.recovery.lastAction, c.recovery.lastReason })
  end)

  it("finish: reason Recovering while it runs, Recovered once Available", function()
    local c = ctx()
    c.recovery = { state = "Running", lastAction = "Start" }
    local res = recovery.finish({ conditions = {
      { type = "Available", status = "False", reason = "Progressing" } } }, instance(), c)
    assert.equal("Recovering", res.conditions[1].reason)
    res = recovery.finish({ conditions = { { type = "Available", status = "True" } } },
      instance(), c)
    assert.same({ "Done", { "Normal Recovered" } }, { res.status.recovery.state, c.events })
  end)
end)
