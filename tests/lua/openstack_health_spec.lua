-- Unit tests of ks.service.openstack_health: which of Nova's os-services and Neutron's
-- agents are reported down, and the report read through a cloud (a stand-in answering as
-- Nova does). The real OpenStack: tests/e2e/services_os.sh.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"

local oh = require "ks.service.openstack_health"

-- os-services as Nova answers it with a stopped nova-conductor.
local SERVICES = {
  { binary = "nova-compute", host = "c1", state = "up", status = "enabled" },
  { binary = "nova-conductor", host = "c1", state = "down", status = "enabled" },
  { binary = "nova-scheduler", host = "c1", state = "up", status = "disabled" },
}


describe("ks.service.openstack_health", function()
  it("names Nova's services that are down or disabled", function()
    assert.same({ "nova-conductor@c1", "nova-scheduler@c1 (disabled)" }, oh.services_down(SERVICES))
    assert.same({}, oh.services_down({ SERVICES[1] }))
  end)

  it("names Neutron's agents that are not alive", function()
    assert.same({ "neutron-openvswitch-agent@c1" }, oh.agents_down({
      { binary = "neutron-openvswitch-agent", host = "c1", alive = false, admin_state_up = true },
      { binary = "neutron-dhcp-agent", host = "c1", alive = true, admin_state_up = true } }))
  end)

  it("reads a service through the cloud and reports what is down, or that the API does not answer", function()
    local cloud = { versions = function() return {} end,
                    request = function(_, svc, method, path)
                      assert.same({ "compute", "GET", "/os-services" }, { svc, method, path })
                      return { services = SERVICES }
                    end }
    local st = oh.read(cloud, { service = "compute", check = "services" })
    assert.equal("ok", st.api)
    assert.equal(3, st.total)
    assert.equal("Nova reports down: nova-conductor@c1, nova-scheduler@c1 (disabled)", oh.message("Nova", st))
    local out = oh.add({ status = { phase = "Ready" }, conditions = {} }, "Nova",
                       { service = "compute", check = "services" }, cloud, nil, 5)
    assert.same({ "OpenStackHealthy", "False", "ServiceDown" },
                { out.conditions[1].type, out.conditions[1].status, out.conditions[1].reason })
    assert.equal(5, out.requeue_after)
    cloud.versions = function() return nil, "connection refused" end
    st = oh.read(cloud, { service = "compute", check = "services" })
    assert.equal("Nova's API does not answer: version document: connection refused", oh.message("Nova", st))
  end)
end)
