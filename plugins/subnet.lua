-- plugins/subnet.lua: kupenstack.io/v1alpha1 Subnet -> a Neutron subnet on a Network's
-- network. cidr, ip_version and the network are fixed at creation; the rest is updated in
-- place. gateway_ip "none" is a subnet without a gateway.
local resource = require "ks.resource"
local neutron = require "ks.resource.neutron"
local json = require "ks.core.json"
local spec_of = require("ks.resource.fields").spec_of

local tostring = tostring


local MUTABLE = { "name", "description", "gateway_ip", "enable_dhcp", "dns_nameservers",
                  "allocation_pools", "host_routes" }


local function resolve(obj)
  local spec = spec_of(obj)
  if not spec.networkRef then
    return {}
  end
  local id, wait = resource.ref_id(obj.metadata.namespace, "Network", spec.networkRef.name)
  if not id then
    return nil, wait
  end
  return { network = id }
end


local function desired(obj, deps)
  local _, r = spec_of(obj)
  local body = resource.pick(r, MUTABLE)
  body.name = neutron.name(obj)
  if r.gateway_ip == "none" then
    body.gateway_ip = json.null
  end
  body.network_id = deps.network
  body.cidr = r.cidr
  body.ip_version = r.cidr and (r.ip_version or 4) or nil
  return body
end


local function immutable(obj, cur, deps)
  local _, r = spec_of(obj)
  if deps.network and deps.network ~= cur.network_id then
    return "spec.networkRef is immutable: subnet " .. cur.id .. " is on network "
      .. cur.network_id .. "; delete and recreate the Subnet to move it"
  end
  if r.cidr and r.cidr ~= cur.cidr then
    return "spec.resource.cidr is immutable: subnet " .. cur.id .. " has " .. cur.cidr
      .. "; delete and recreate the Subnet to change it"
  end
  if r.ip_version and r.ip_version ~= cur.ip_version then
    return "spec.resource.ip_version is immutable: subnet " .. cur.id .. " is IPv"
      .. tostring(cur.ip_version) .. "; delete and recreate the Subnet to change it"
  end
end


return resource.plugin(neutron.kind {
  kind = "Subnet", path = "/subnets", key = "subnet", plural = "subnets",
  depends = { "Network" },
  resolve = resolve, desired = desired, mutable = MUTABLE, immutable = immutable,
  equal = {
    -- Neutron keeps the order of the DNS servers (it matters), not of pools and routes.
    allocation_pools = neutron.same_items,
    host_routes = neutron.same_items,
  },
  observe = function(cur)
    local fields = resource.pick(cur, { "name", "description", "network_id", "cidr",
      "ip_version", "gateway_ip", "enable_dhcp", "dns_nameservers", "allocation_pools",
      "host_routes", "tags" })
    return fields, "available", "subnet " .. cur.id .. " (" .. tostring(cur.cidr) .. ") exists"
  end,
})
