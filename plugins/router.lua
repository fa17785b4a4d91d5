-- plugins/router.lua: kupenstack.io/v1alpha1 Router -> a Neutron router, with its gateway on
-- an external network (a Network of the namespace, or one of the cloud's by name or id)
-- and an interface on each Subnet of spec.interfaces: missing ones are added, others
-- removed. Deleting the Router removes its interfaces first.
local resource = require "ks.resource"
local neutron = require "ks.resource.neutron"
local json = require "ks.core.json"
local spec_of = require("ks.resource.fields").spec_of

local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local sort = table.sort


local MUTABLE = { "name", "description", "admin_state_up", "external_gateway_info" }

-- The device owners of a router's interfaces (not its gateway).
local INTERFACE_OWNERS = {
  ["network:router_interface"] = true,
  ["network:router_interface_distributed"] = true,
  ["network:ha_router_replicated_interface"] = true,
}


local function resolve(obj)
  local spec = spec_of(obj)
  local deps = { subnets = {} }
  for i, itf in ipairs(spec.interfaces or {}) do
    local id, wait = resource.ref_id(obj.metadata.namespace, "Subnet", itf.subnetRef.name)
    if not id then
      return nil, wait
    end
    deps.subnets[i] = id
  end
  return deps
end


local function lookup(cloud, obj, deps)
  local gw = (obj.spec or {}).externalGateway
  if gw then
    local id, wait = neutron.network_id(cloud, obj, gw, "spec.externalGateway")
    if not id then
      return nil, wait
    end
    deps.gateway = id
  end
  return deps
end


local function desired(obj, deps)
  local spec, r = spec_of(obj)
  local body = resource.pick(r, { "description", "admin_state_up" })
  body.name = neutron.name(obj)
  if deps.gateway then
    body.external_gateway_info = { network_id = deps.gateway,
                                   enable_snat = spec.externalGateway.enable_snat }
  elseif not spec.import then
    body.external_gateway_info = json.null
  end
  return body
end


-- The gateway as spec says it (network, and enable_snat when given) against Neutron's.
local function same_gateway(want, have)
  if want == json.null or have == json.null or have == nil then
    return want == have or (want == json.null and have == nil)
  end
  return want.network_id == have.network_id
    and (want.enable_snat == nil or want.enable_snat == have.enable_snat)
end


-- The router's interface ports: {port_id = subnet_ids}.
local function interfaces(cloud, router_id)
  local ports, err = cloud:list("network", "/ports", "ports", { query = { device_id = router_id } })
  if not ports then
    return nil, err
  end
  local out = {}
  for _, p in ipairs(ports) do
    if INTERFACE_OWNERS[p.device_owner] then
      local subnets = {}
      for i, ip in ipairs(p.fixed_ips or {}) do
        subnets[i] = ip.subnet_id
      end
      out[p.id] = subnets
    end
  end
  return out
end


local function interface_call(cloud, router_id, verb, body)
  return cloud:request("network", "PUT", "/routers/" .. router_id .. "/" .. verb
    .. "_router_interface", { body = body })
end


-- Add an interface on each wanted subnet the router has none on; remove the others
-- (when spec.interfaces is given: an imported router's are left alone without it).
local function sync_interfaces(cloud, cur, obj, deps)
  local spec = spec_of(obj)
  if spec.import and not spec.interfaces then
    return false
  end
  local have, err = interfaces(cloud, cur.id)
  if not have then
    return nil, err
  end
  local changed, covered = false, {}
  for port_id, subnets in pairs(have) do
    local wanted = false
    for _, s in ipairs(subnets) do
      if resource.has(deps.subnets, s) then
        wanted, covered[s] = true, true
      end
    end
    if not wanted then
      local done, rerr = interface_call(cloud, cur.id, "remove", { port_id = port_id })
      if not done then
        return nil, rerr
      end
      changed = true
    end
  end
  for _, s in ipairs(deps.subnets) do
    if not covered[s] then
      local done, aerr = interface_call(cloud, cur.id, "add", { subnet_id = s })
      if not done then
        return nil, aerr
      end
      covered[s], changed = true, true
    end
  end
  return changed
end


local function remove_interfaces(cloud, cur)
  local have, err = interfaces(cloud, cur.id)
  if not have then
    return nil, err
  end
  for port_id in pairs(have) do
    local done, rerr = interface_call(cloud, cur.id, "remove", { port_id = port_id })
    if not done and rerr.kind ~= "not_found" then
      return nil, rerr
    end
  end
  return true
end


local def = neutron.kind {
  kind = "Router", path = "/routers", key = "router", plural = "routers",
  depends = { "Network", "Subnet" },
  resolve = resolve, lookup = lookup, desired = desired, mutable = MUTABLE,
  equal = { external_gateway_info = same_gateway },
  after_update = sync_interfaces,
  before_delete = remove_interfaces,
  observe = function(cur)
    local fields = resource.pick(cur, { "name", "description", "status", "admin_state_up",
      "external_gateway_info", "interfaces", "tags" })
    if cur.status == "ACTIVE" then
      return fields, "available", "router " .. cur.id .. " is ACTIVE"
    end
    if cur.status == "ERROR" then
      return fields, "error", "router " .. cur.id .. " is in ERROR"
    end
    return fields, "progressing", "router " .. cur.id .. " is " .. tostring(cur.status)
  end,
}


-- The router with its interfaces, for status: [{subnet_id, port_id}].
local get = def.get
function def.get(cloud, id)
  local cur, err = get(cloud, id)
  if not cur then
    return nil, err
  end
  local have, ierr = interfaces(cloud, id)
  if not have then
    return nil, ierr
  end
  local list = {}
  for port_id, subnets in pairs(have) do
    for _, s in ipairs(subnets) do
      list[#list + 1] = { subnet_id = s, port_id = port_id }
    end
  end
  sort(list, function(a, b) return a.subnet_id < b.subnet_id end)
  cur.interfaces = json.array(list)
  return cur
end


return resource.plugin(def)
