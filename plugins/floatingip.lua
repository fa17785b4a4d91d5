-- plugins/floatingip.lua: kupenstack.io/v1alpha1 FloatingIP -> a Neutron floating IP on an
-- external network (a Network of the namespace, or one of the cloud's by name or id),
-- forwarded to a Port of the namespace when portRef says so (changing portRef moves it).
-- Floating IPs have no name: ours is found by our UID tag, and, when the tagging after its
-- create was lost, by the description it was created with (ks.resource.neutron.own_description,
-- kept while spec gives none).
local resource = require "ks.resource"
local neutron = require "ks.resource.neutron"
local json = require "ks.core.json"
local spec_of = require("ks.resource.fields").spec_of

local tostring = tostring


local function resolve(obj)
  local spec = spec_of(obj)
  local deps = {}
  if spec.portRef then
    local wait
    deps.port, wait = resource.ref_id(obj.metadata.namespace, "Port", spec.portRef.name)
    if not deps.port then
      return nil, wait
    end
  end
  return deps
end


local function lookup(cloud, obj, deps)
  local ext = (obj.spec or {}).externalNetwork
  if ext then
    local id, wait = neutron.network_id(cloud, obj, ext, "spec.externalNetwork")
    if not id then
      return nil, wait
    end
    deps.network = id
  end
  return deps
end


local function desired(obj, deps)
  local spec, r = spec_of(obj)
  local body = resource.pick(r, { "description", "floating_ip_address" })
  body.floating_network_id = deps.network
  if deps.port then
    body.port_id = deps.port
  elseif not spec.import then
    body.port_id = json.null
  end
  if not body.description and not spec.import then
    body.description = neutron.own_description(obj)
  end
  return body
end


local function fip(say)
  return function(have, _, cur) return "floating IP " .. cur.id .. say .. tostring(have) end
end


local IMMUTABLE = {
  { "spec.externalNetwork", dep = "network", have = "floating_network_id",
    is = fip(" is on network ") },
  { "spec.resource.floating_ip_address", have = "floating_ip_address", is = fip(" is ") },
}


return resource.plugin(neutron.kind {
  kind = "FloatingIP", path = "/floatingips", key = "floatingip", plural = "floatingips",
  depends = { "Network", "Port" },
  resolve = resolve, lookup = lookup, desired = desired, immutable = IMMUTABLE,
  mutable = { "description", "port_id" },
  observe = function(cur)
    local fields = resource.pick(cur, { "description", "status", "floating_ip_address",
      "floating_network_id", "port_id", "fixed_ip_address", "router_id", "tags" })
    -- An address forwarded nowhere is DOWN, and ready.
    if cur.status == "ACTIVE" or cur.status == "DOWN" then
      return fields, "available", "floating IP " .. tostring(cur.floating_ip_address)
        .. " is " .. cur.status
    end
    if cur.status == "ERROR" then
      return fields, "error", "floating IP " .. cur.id .. " is in ERROR"
    end
    return fields, "progressing", "floating IP " .. cur.id .. " is " .. tostring(cur.status)
  end,
})
