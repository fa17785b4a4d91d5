-- plugins/port.lua: kupenstack.io/v1alpha1 Port -> a Neutron port on a Network's network,
-- with addresses on Subnets and SecurityGroups. The network and the MAC address are fixed
-- at creation; addresses, groups and the rest are updated in place. A port attached to a
-- server, or that a FloatingIP of the namespace points at, is not deleted.
local resource = require "ks.resource"
local kube = require "ks.core.kube"
local neutron = require "ks.resource.neutron"
local json = require "ks.core.json"
local spec_of = require("ks.resource.fields").spec_of

local ipairs = ipairs
local type = type
local tostring = tostring
local lower = string.lower


local MUTABLE = { "name", "description", "admin_state_up", "port_security_enabled",
                  "security_groups" }


-- Before a port without fixed_ips is made: a Subnet of the namespace on its network that
-- is not created yet, or nil. Neutron gives a port an address on each subnet its network
-- has when the port is made, and never after: a Port applied with its Subnet would
-- otherwise race it and get none (and Nova refuses such a port: "requires a FixedIP").
local function subnet_pending(obj, spec, r)
  if (obj.status and obj.status.id) or r.fixed_ips or not spec.networkRef then
    return nil
  end
  local net = spec.networkRef.name
  for _, o in ipairs(kube.list(resource.res("Subnet"), { namespace = obj.metadata.namespace })) do
    local ref = o.spec and o.spec.networkRef
    if ref and ref.name == net and not (o.status and o.status.id) then
      return "Subnet " .. o.metadata.name .. " of Network " .. net .. " is not created yet"
    end
  end
end


local function resolve(obj)
  local spec, r = spec_of(obj)
  local ns = obj.metadata.namespace
  local deps = { subnets = {} }
  local wait
  if spec.networkRef then
    deps.network, wait = resource.ref_id(ns, "Network", spec.networkRef.name)
    if not deps.network then
      return nil, wait
    end
    wait = subnet_pending(obj, spec, r)
    if wait then
      return nil, wait
    end
  end
  for _, ip in ipairs(r.fixed_ips or {}) do
    if ip.subnetRef then
      local id
      id, wait = resource.ref_id(ns, "Subnet", ip.subnetRef.name)
      if not id then
        return nil, wait
      end
      deps.subnets[ip.subnetRef.name] = id
    end
  end
  if spec.securityGroupRefs then
    deps.groups = json.array({})
    for i, ref in ipairs(spec.securityGroupRefs) do
      local id
      id, wait = neutron.available_id(obj, "SecurityGroup", ref.name)
      if not id then
        return nil, wait
      end
      deps.groups[i] = id
    end
  end
  return deps
end


-- spec's fixed_ips with subnet IDs: [{subnet_id?, ip_address?}].
local function wanted_ips(obj, deps)
  local _, r = spec_of(obj)
  if not r.fixed_ips then
    return nil
  end
  local out = json.array({})
  for i, ip in ipairs(r.fixed_ips) do
    out[i] = { subnet_id = ip.subnetRef and deps.subnets[ip.subnetRef.name],
               ip_address = ip.ip_address }
  end
  return out
end


local function desired(obj, deps)
  local _, r = spec_of(obj)
  local body = resource.pick(r, { "description", "admin_state_up", "port_security_enabled",
                                  "mac_address" })
  body.name = neutron.name(obj)
  body.network_id = deps.network
  body.fixed_ips = wanted_ips(obj, deps)
  body.security_groups = deps.groups
  return body
end


-- Neutron's address for each wanted one ({subnet_id?, ip_address?}), or nil when some
-- wanted one has none or Neutron has more.
local function match_ips(want, have)
  if #want ~= #have then
    return nil
  end
  local used, out = {}, {}
  for i, w in ipairs(want) do
    for j, h in ipairs(have) do
      if not used[j] and (not w.subnet_id or w.subnet_id == h.subnet_id)
          and (not w.ip_address or w.ip_address == h.ip_address) then
        used[j], out[i] = true, h
        break
      end
    end
    if not out[i] then
      return nil
    end
  end
  return out
end


-- Make the port's addresses spec's (when spec.resource.fixed_ips is given); an address
-- spec leaves to Neutron is kept when the port has one on that subnet.
local function sync_ips(cloud, cur, obj, deps)
  local want = wanted_ips(obj, deps)
  if not want then
    return false
  end
  local have = cur.fixed_ips or {}
  if match_ips(want, have) then
    return false
  end
  local body, used = json.array({}), {}
  for i, w in ipairs(want) do
    body[i] = { subnet_id = w.subnet_id, ip_address = w.ip_address }
    if not w.ip_address then
      for j, h in ipairs(have) do
        if not used[j] and h.subnet_id == w.subnet_id then
          used[j], body[i].ip_address = true, h.ip_address
          break
        end
      end
    end
  end
  local done, err = cloud:request("network", "PUT", "/ports/" .. cur.id,
    { body = { port = { fixed_ips = body } } })
  if not done then
    return nil, err
  end
  return true
end


local function port(say)
  return function(have, _, cur) return "port " .. cur.id .. say .. tostring(have) end
end


local IMMUTABLE = {
  { "spec.networkRef", dep = "network", have = "network_id", is = port(" is on network ") },
  { "spec.resource.mac_address", have = "mac_address", is = port(" has "),
    same = function(want, have) return lower(want) == lower(tostring(have)) end },
}


-- FloatingIPs of the namespace that point at this Port.
local USERS = { { kind = "FloatingIP", ref = "spec.portRef" } }


local function before_delete(_, cur)
  local owner = cur.device_owner
  if type(owner) == "string" and owner:sub(1, 8) == "compute:" then
    return nil, { kind = "conflict", message = "port " .. cur.id .. " is attached to server "
      .. tostring(cur.device_id) }
  end
  return true
end


return resource.plugin(neutron.kind {
  kind = "Port", path = "/ports", key = "port", plural = "ports",
  depends = { "Network", "Subnet", "SecurityGroup", "FloatingIP" },
  resolve = resolve, desired = desired, mutable = MUTABLE, immutable = IMMUTABLE, users = USERS,
  equal = { security_groups = neutron.same_set },
  after_update = sync_ips,
  before_delete = before_delete,
  observe = function(cur)
    local fields = resource.pick(cur, { "name", "description", "status", "network_id",
      "mac_address", "fixed_ips", "security_groups", "admin_state_up", "port_security_enabled",
      "device_id", "device_owner", "tags" })
    -- An unbound port is DOWN: it is ready to be plugged.
    if cur.status == "ACTIVE" or cur.status == "DOWN" then
      return fields, "available", "port " .. cur.id .. " is " .. cur.status
    end
    if cur.status == "ERROR" then
      return fields, "error", "port " .. cur.id .. " is in ERROR"
    end
    return fields, "progressing", "port " .. cur.id .. " is " .. tostring(cur.status)
  end,
})
