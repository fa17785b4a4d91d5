-- plugins/network.lua: kupenstack.io/v1alpha1 Network -> a Neutron network.
local resource = require "ks.resource"
local neutron = require "ks.resource.neutron"


local MUTABLE = { "name", "description", "admin_state_up", "shared", "mtu",
                  "port_security_enabled" }


local function desired(obj)
  local r = (obj.spec and obj.spec.resource) or {}
  local body = resource.pick(r, MUTABLE)
  body.name = neutron.name(obj)
  local p = r.provider
  if p then
    body["provider:network_type"] = p.network_type
    body["provider:physical_network"] = p.physical_network
    body["provider:segmentation_id"] = p.segmentation_id
  end
  return body
end


return resource.plugin(neutron.kind {
  kind = "Network", path = "/networks", key = "network", plural = "networks",
  depends = { "Subnet" },
  desired = desired, mutable = MUTABLE,
  -- The Subnets of the namespace on this network: Neutron would delete them with it.
  users = { { kind = "Subnet", ref = "spec.networkRef" } },
  immutable = { { "spec.resource.provider.network_type", have = "provider:network_type" } },
  observe = function(cur)
    local fields = resource.pick(cur, { "name", "description", "status", "admin_state_up",
      "shared", "mtu", "port_security_enabled", "router:external", "subnets",
      "provider:network_type", "provider:physical_network", "tags" })
    if cur.status == "ACTIVE" then
      return fields, "available", "network " .. cur.id .. " is ACTIVE"
    end
    if cur.status == "ERROR" then
      return fields, "error", "network " .. cur.id .. " is in ERROR"
    end
    return fields, "progressing", "network " .. cur.id .. " is " .. tostring(cur.status)
  end,
})
