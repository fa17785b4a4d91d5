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


local function subnet(say)
  return function(have, _, cur) return "subnet " .. cur.id .. say .. tostring(have) end
end


local IMMUTABLE = {
  { "spec.networkRef", dep = "network", have = "network_id", is = subnet(" is on network ") },
  { "spec.resource.cidr", have = "cidr", is = subnet(" has ") },
  { "spec.resource.ip_version", have = "ip_version", is = subnet(" is IPv") },
}


return resource.plugin(neutron.kind {
  kind = "Subnet", path = "/subnets", key = "subnet", plural = "subnets",
  depends = { "Network" },
  resolve = resolve, desired = desired, mutable = MUTABLE, immutable = IMMUTABLE,
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
