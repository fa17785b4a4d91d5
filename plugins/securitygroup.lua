-- plugins/securitygroup.lua: kupenstack.io/v1alpha1 SecurityGroup -> a Neutron security
-- group whose rules are exactly spec.resource.rules: missing rules are created, any other
-- deleted (the egress rules Neutron gives a new group included). A rule's remoteGroupRef
-- names a SecurityGroup of the namespace, this one included.
local resource = require "ks.resource"
local neutron = require "ks.resource.neutron"
local json = require "ks.core.json"
local spec_of = require("ks.resource.fields").spec_of

local ipairs = ipairs
local tostring = tostring
local lower = string.lower


local MUTABLE = { "name", "description", "stateful" }
local RULE_FIELDS = { "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                      "remote_ip_prefix", "remote_group_id", "description" }


-- The SecurityGroups the rules refer to: {name = id}; this group is "self" until created.
local function resolve(obj)
  local _, r = spec_of(obj)
  local groups = {}
  for _, rule in ipairs(r.rules or {}) do
    local ref = rule.remoteGroupRef
    if ref and not groups[ref.name] then
      if ref.name == obj.metadata.name then
        groups[ref.name] = "self"
      else
        local id, wait = resource.ref_id(obj.metadata.namespace, "SecurityGroup", ref.name)
        if not id then
          return nil, wait
        end
        groups[ref.name] = id
      end
    end
  end
  return { groups = groups }
end


local function desired(obj)
  local _, r = spec_of(obj)
  local body = resource.pick(r, MUTABLE)
  body.name = neutron.name(obj)
  return body
end


-- A rule of spec as Neutron would hold it, in group group_id.
local function wanted_rule(rule, groups, group_id)
  local w = resource.pick(rule, RULE_FIELDS)
  w.ethertype = w.ethertype or "IPv4"
  if w.protocol ~= nil then
    w.protocol = lower(tostring(w.protocol))
  end
  if rule.remoteGroupRef then
    local id = groups[rule.remoteGroupRef.name]
    w.remote_group_id = id == "self" and group_id or id
  end
  return w
end


local function opt(v)
  if v == nil or v == json.null then
    return nil
  end
  return v
end


-- Does Neutron's rule have matches spec's rule w? A description is compared only when
-- spec gives one; a prefix matches Neutron's as given or normalized.
local function matches(w, have)
  if w.direction ~= have.direction or w.ethertype ~= have.ethertype then
    return false
  end
  local hp = opt(have.protocol)
  if (w.protocol or "") ~= (hp and lower(tostring(hp)) or "") then
    return false
  end
  for _, k in ipairs({ "port_range_min", "port_range_max", "remote_group_id" }) do
    if w[k] ~= opt(have[k]) then
      return false
    end
  end
  local prefix = opt(have.remote_ip_prefix)
  if w.remote_ip_prefix ~= prefix and w.remote_ip_prefix ~= opt(have.normalized_cidr) then
    return false
  end
  return w.description == nil or w.description == (opt(have.description) or "")
end


-- Make the group's rules spec's (when spec.resource.rules is given): delete the rules
-- spec does not list, then create the ones it lists that are missing.
local function sync_rules(cloud, cur, obj, deps)
  local _, r = spec_of(obj)
  if not r.rules then
    return false
  end
  local want, used, seen = {}, {}, {}
  for _, rule in ipairs(r.rules) do
    local w = wanted_rule(rule, deps.groups or {}, cur.id)
    local dup = false
    for _, o in ipairs(seen) do
      dup = dup or matches(w, o)
    end
    seen[#seen + 1] = w
    local found = dup
    for j, have in ipairs(cur.security_group_rules or {}) do
      if not found and not used[j] and matches(w, have) then
        used[j], found = true, true
      end
    end
    if not found then
      want[#want + 1] = w
    end
  end
  local changed = false
  for j, have in ipairs(cur.security_group_rules or {}) do
    if not used[j] then
      local done, err = cloud:request("network", "DELETE", "/security-group-rules/" .. have.id,
        { expect = { 204, 404 } })
      if not done then
        return nil, err
      end
      changed = true
    end
  end
  for _, w in ipairs(want) do
    w.security_group_id = cur.id
    local done, err = cloud:request("network", "POST", "/security-group-rules",
      { body = { security_group_rule = w } })
    if not done then
      return nil, err
    end
    changed = true
  end
  return changed
end


-- Other SecurityGroups of the namespace whose rules name this one: Neutron would delete
-- those rules with it.
local USERS = {
  { kind = "SecurityGroup", refs = function(o)
    local names = {}
    for _, rule in ipairs((o.spec and o.spec.resource and o.spec.resource.rules) or {}) do
      names[#names + 1] = rule.remoteGroupRef and rule.remoteGroupRef.name
    end
    return names
  end },
}


return resource.plugin(neutron.kind {
  kind = "SecurityGroup", path = "/security-groups", key = "security_group",
  plural = "security_groups",
  depends = { "SecurityGroup" },
  resolve = resolve, desired = desired, mutable = MUTABLE,
  after_update = sync_rules,
  users = USERS,
  observe = function(cur)
    local fields = resource.pick(cur, { "name", "description", "stateful", "tags" })
    local rules = {}
    for i, rule in ipairs(cur.security_group_rules or {}) do
      rules[i] = resource.pick(rule, { "id", "direction", "ethertype", "protocol",
        "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id", "description" })
    end
    fields.rules = json.array(rules)
    return fields, "available", "security group " .. cur.id .. " has " .. #rules .. " rules"
  end,
})
