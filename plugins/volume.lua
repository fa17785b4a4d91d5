-- plugins/volume.lua: kupenstack.io/v1alpha1 Volume -> a Cinder volume.
--
-- Cinder has no tags: ours carries the metadata kupenstack-uid=<UID> from its creation on,
-- and is found by it. creating -> available; name, description and metadata change in
-- place; the size may only grow (the extend action); the availability zone, the volume
-- type and the source image cannot change. The volume is not deleted while an Instance of
-- the namespace boots from it, nor while Cinder has it attached.
local resource = require "ks.resource"
local cinder = require "ks.openstack.cinder"
local fields_of = require "ks.resource.fields"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local value = fields_of.value
local reread = fields_of.reread
local os_name = fields_of.os_name


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end


local UID_KEY = "kupenstack-uid"


local function has_metadata(vol, want)
  local md = vol.metadata or {}
  for k, v in pairs(want or {}) do
    if md[k] ~= v then
      return false
    end
  end
  return true
end


local function find_own(cloud, obj)
  local want = { [UID_KEY] = obj.metadata.uid }
  local items, err = cinder.volumes(cloud, { metadata = want })
  if not items then
    return nil, err
  end
  for _, v in ipairs(items) do
    if has_metadata(v, want) then
      return v
    end
  end
  return nil
end


local function find(cloud, filter)
  local items, err = cinder.volumes(cloud, { name = filter.name, metadata = filter.metadata })
  if not items then
    return nil, err
  end
  local out = {}
  for _, v in ipairs(items) do
    if (filter.name == nil or v.name == filter.name) and has_metadata(v, filter.metadata) then
      out[#out + 1] = v
    end
  end
  return out
end


-- The Image to fill the volume with: its ID, once it is available (or, for a volume
-- that exists already, once it has an ID).
local function resolve(obj)
  local ref = obj.spec and obj.spec.imageRef
  if not ref then
    return {}
  end
  local id, wait, o = resource.ref_id(obj.metadata.namespace, "Image", ref.name)
  if not id then
    return nil, wait
  end
  local st = o.status.resource and o.status.resource.status
  if not (obj.status and obj.status.id) and st ~= "active" then
    return nil, "Image " .. ref.name .. " is not active yet (" .. tostring(st) .. ")"
  end
  return { image = id }
end


local function create(cloud, obj, deps)
  local r = spec_resource(obj)
  local md = { [UID_KEY] = obj.metadata.uid }
  for k, v in pairs(r.metadata or {}) do
    md[k] = v
  end
  return cinder.volume_create(cloud, {
    name = resource.name(obj), description = r.description, size = r.size,
    volume_type = r.volume_type, availability_zone = r.availability_zone, metadata = md,
    imageRef = deps.image,
  })
end


-- The metadata cur should have, or nil when it has it (or spec.resource.metadata is
-- unset). Our key stays.
local function wanted_metadata(cur, obj)
  local want = spec_resource(obj).metadata
  if not want then
    return nil
  end
  local md = {}
  for k, v in pairs(want) do
    md[k] = v
  end
  local have = cur.metadata or {}
  if have[UID_KEY] then
    md[UID_KEY] = have[UID_KEY]
  end
  if resource.equal(md, have) then
    return nil
  end
  return md
end


local function update(cloud, cur, obj)
  local spec = obj.spec or {}
  local r = spec.resource
  if not r then
    return cur, false
  end
  local changed = false
  local fields = {}
  local name = os_name(obj)
  if name and name ~= value(cur.name) then
    fields.name = name
  end
  if r.description and r.description ~= value(cur.description) then
    fields.description = r.description
  end
  if next(fields) then
    local _, err = cinder.volume_update(cloud, cur.id, fields)
    if err then
      return nil, err
    end
    changed = true
  end
  local md = wanted_metadata(cur, obj)
  if md then
    local _, err = cinder.volume_set_metadata(cloud, cur.id, md)
    if err then
      return nil, err
    end
    changed = true
  end
  if r.size and r.size > cur.size and (cur.status == "available" or cur.status == "in-use") then
    local _, err = cinder.volume_action(cloud, cur.id, "os-extend", { new_size = r.size })
    if err then
      return nil, err
    end
    changed = true
  end
  if changed then
    return reread(cinder.volume_get, cloud, cur.id)
  end
  return cur, false
end


-- What Cinder cannot change: a change is refused (InvalidConfiguration). The size may
-- only grow (the extend action).
local IMMUTABLE = {
  function(obj, cur)
    local size = spec_resource(obj).size
    if size and size < cur.size then
      return "spec.resource.size may only grow: volume " .. cur.id .. " has " .. cur.size
        .. " GiB, spec says " .. size .. " GiB"
    end
  end,
  { "spec.resource.availability_zone", have = "availability_zone", is = "the volume is in" },
  { "spec.resource.volume_type", have = "volume_type", is = "the volume is of type",
    note = "retyping is not supported" },
  { "spec.imageRef", dep = "image", is = "the volume was made from image",
    have = function(cur)
      local meta = cur.volume_image_metadata
      return type(meta) == "table" and meta.image_id or nil
    end },
}


-- The Instances of the namespace that boot from it: it is not deleted under them.
local USERS = { { kind = "Instance", ref = "spec.bootVolumeRef", says = "boots from it" } }


local STATES = {
  available = "available", ["in-use"] = "available", error = "error",
  error_extending = "error", error_restoring = "error", error_deleting = "error",
  error_managing = "error", error_backing_up = "error",
}


local function observe(cur, obj)
  local fields = fields_of.present(cur, { "name", "description", "status", "size", "volume_type",
    "availability_zone", "bootable", "encrypted", "multiattach", "metadata", "attachments",
    "volume_image_metadata", "created_at" })
  local state = STATES[cur.status] or "progressing"
  local msg = "volume " .. cur.id .. " is " .. tostring(cur.status)
  local want = spec_resource(obj).size
  if state == "available" and want and want > cur.size then
    state, msg = "progressing", msg .. ", to be extended to " .. want .. " GiB"
  elseif cur.status == "error_extending" then
    msg = msg .. ": Cinder could not extend it (its messages say why; an admin can reset "
      .. "its state to available)"
  end
  return fields, state, msg
end


return resource.plugin {
  kind = "Volume", depends = { "Image" }, poll = 2, async_delete = true,
  get = cinder.volume_get, find_own = find_own, find = find, resolve = resolve,
  create = create, update = update, immutable = IMMUTABLE, users = USERS,
  delete = function(cloud, cur) return cinder.volume_delete(cloud, cur.id) end,
  observe = fields_of.observer(observe),
  deleting = function(cur) return cur.status == "deleting" end,
}
