-- plugins/flavor.lua: kupenstack.io/v1alpha1 Flavor -> a Nova flavor.
--
-- Flavors belong to the cloud, not to a project: the kind is cluster-scoped (like a
-- StorageClass), written only by those a cluster admin grants the ClusterRole
-- kupenstack-flavor-admin (deploy/rbac-aggregate.yaml; the namespaced edit/admin roles do
-- not include it), and made with the operator's own credentials (admin). Nova flavors have
-- no tags: ours gets the CR's UID as its flavor ID (so a create whose answer was lost is
-- found again by ID, with nothing in between) and the extra spec kupenstack:uid = UID. A
-- private flavor (is_public: false) is shared with the projects of the namespaces in
-- spec.namespaces, and with no other. Only description, extra_specs and spec.namespaces can
-- change; the rest is refused with InvalidConfiguration.
local resource = require "ks.resource"
local openstack = require "ks.openstack"
local nova = require "ks.openstack.nova"
local fields_of = require "ks.resource.fields"
local sync = require "ks.resource.sync"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local value = fields_of.value
local reread = fields_of.reread


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end


local UID_SPEC = "kupenstack:uid"

-- What Nova cannot change in a flavor: spec.resource's fields and what Nova calls them
-- (a change is refused with InvalidConfiguration).
local IMMUTABLE = {
  { "spec.resource.name", have = "name", is = "the flavor is named",
    want = function(obj)
      local spec = obj.spec or {}
      return spec.resource and (spec.import and spec.resource.name or resource.name(obj))
    end },
}
for _, f in ipairs({ { "ram" }, { "vcpus" }, { "disk" }, { "ephemeral", "OS-FLV-EXT-DATA:ephemeral" },
    { "swap" }, { "rxtx_factor" }, { "is_public", "os-flavor-access:is_public" } }) do
  IMMUTABLE[#IMMUTABLE + 1] = { "spec.resource." .. f[1], have = f[2] or f[1], unset_differs = true }
end


local function is_ours(cur, obj)
  return cur.extra_specs and cur.extra_specs[UID_SPEC] == obj.metadata.uid
end


local function get(cloud, id)
  return nova.flavor_get(cloud, id)
end


-- Ours: the flavor whose ID is the UID, or (made some other way) carrying our extra spec.
local function find_own(cloud, obj)
  local uid = obj.metadata.uid
  local cur, err = nova.flavor_get(cloud, uid)
  if cur then
    if not is_ours(cur, obj) then
      local _, serr = nova.extra_specs_set(cloud, cur.id, { [UID_SPEC] = uid })
      if serr then
        return nil, serr
      end
      return nova.flavor_get(cloud, cur.id)
    end
    return cur
  end
  if not openstack.is_not_found(err) then
    return nil, err
  end
  local all
  all, err = nova.flavors(cloud)
  if not all then
    return nil, err
  end
  for _, f in ipairs(all) do
    if is_ours(f, obj) then
      return f
    end
  end
  return nil
end


local function find(cloud, filter)
  local all, err = nova.flavors(cloud)
  if not all then
    return nil, err
  end
  return fields_of.matching(all, filter, { "name", "vcpus", "ram", "disk" })
end


-- A private flavor needs the projects of spec.namespaces, to share the flavor with them.
local function resolve(obj)
  local r = spec_resource(obj)
  local spec = obj.spec or {}
  if r.is_public == false and not spec.import then
    local projects = {}
    for i, ns in ipairs(spec.namespaces or {}) do
      local pid, wait = resource.project_of(ns)
      if not pid then
        return nil, wait .. " (spec.namespaces)"
      end
      projects[i] = pid
    end
    return { projects = projects }
  end
  return {}
end


-- Share a private flavor with exactly deps.projects: true when access changed.
local function share(cloud, cur, obj, deps)
  if spec_resource(obj).is_public ~= false or not deps.projects then
    return false
  end
  local ids, err = nova.flavor_access(cloud, cur.id)
  if not ids then
    return nil, err
  end
  local add, remove = sync.set(ids, deps.projects)
  return sync.apply(add, remove,
    function(pid) return sync.done(nova.flavor_add_access(cloud, cur.id, pid)) end,
    function(pid) return sync.done_or_gone(nova.flavor_remove_access(cloud, cur.id, pid)) end)
end


local function create(cloud, obj, deps)
  local r = spec_resource(obj)
  local name = resource.name(obj)
  local cur, err = nova.flavor_create(cloud, {
    id = obj.metadata.uid, name = name, ram = r.ram, vcpus = r.vcpus, disk = r.disk,
    ["OS-FLV-EXT-DATA:ephemeral"] = r.ephemeral, swap = r.swap, rxtx_factor = r.rxtx_factor,
    ["os-flavor-access:is_public"] = r.is_public, description = r.description,
  })
  if not cur then
    if type(err) == "table" and err.kind == "conflict" then
      return nil, { kind = "invalid", message = "cannot create flavor " .. name .. ": "
        .. tostring(err.message) .. " (flavor names are unique in the whole cloud: choose "
        .. "another spec.resource.name, or adopt that flavor with spec.import)" }
    end
    return nil, err
  end
  local specs = { [UID_SPEC] = obj.metadata.uid }
  for k, v in pairs(r.extra_specs or {}) do
    specs[k] = v
  end
  local _, serr = nova.extra_specs_set(cloud, cur.id, specs)
  if serr then
    return nil, serr
  end
  local _, aerr = share(cloud, cur, obj, deps)
  if aerr then
    return nil, aerr
  end
  return nova.flavor_get(cloud, cur.id)
end


-- Set and unset extra specs to match spec.resource.extra_specs (our mark is kept).
local function sync_extra_specs(cloud, cur, obj)
  local want = spec_resource(obj).extra_specs
  local set, unset = sync.map(cur.extra_specs or {}, want, { [UID_SPEC] = true })
  local values = {}
  for _, k in ipairs(set) do
    values[k] = want[k]
  end
  return sync.apply(#set > 0 and { values } or {}, unset,
    function(v) return sync.done(nova.extra_specs_set(cloud, cur.id, v)) end,
    function(k) return sync.done_or_gone(nova.extra_spec_unset(cloud, cur.id, k)) end)
end


local function update(cloud, cur, obj, deps)
  local r = spec_resource(obj)
  local changed = false
  if r.description ~= nil and r.description ~= value(cur.description) then
    local _, err = nova.flavor_set_description(cloud, cur.id, r.description)
    if err then
      return nil, err
    end
    changed = true
  end
  local more, err = sync_extra_specs(cloud, cur, obj)
  if more == nil then
    return nil, err
  end
  changed = changed or more
  more, err = share(cloud, cur, obj, deps)
  if more == nil then
    return nil, err
  end
  changed = changed or more
  if changed then
    return reread(nova.flavor_get, cloud, cur.id)
  end
  return cur, false
end


local function observe(cur)
  local fields = resource.pick(cur, { "name", "ram", "vcpus", "disk", "swap", "rxtx_factor",
    "OS-FLV-EXT-DATA:ephemeral", "os-flavor-access:is_public", "OS-FLV-DISABLED:disabled",
    "extra_specs" })
  fields.description = value(cur.description)
  return fields, "available", "flavor " .. tostring(cur.name) .. " (" .. cur.id .. ") exists"
end


return resource.plugin {
  kind = "Flavor", admin = true,
  get = get, find_own = find_own, find = find, resolve = resolve, create = create,
  update = update, immutable = IMMUTABLE, observe = fields_of.observer(observe),
  delete = function(cloud, cur) return nova.flavor_delete(cloud, cur.id) end,
}
