-- plugins/image.lua: kupenstack.io/v1alpha1 Image -> a Glance image, its data fetched
-- from spec.source.url.
--
-- The image is created with our UID tag (queued), then gets its data by Glance's
-- web-download import or streamed by the host (ks.resource.source says which, and how
-- the URL is checked: spec.source.url may reach public addresses only, unless the setting
-- allow_source_networks names a network).
--
-- A create or upload cut short is taken up again: the queued image is found by its tag and
-- gets its data. Name, visibility, min_disk, min_ram, protected, tags and properties
-- change in place (JSON patch); formats and source cannot (the source URL is kept in the
-- image property kupenstack_source_url). The image is not deleted while an Instance of the
-- namespace boots from it.
local json = require "ks.core.json"
local resource = require "ks.resource"
local glance = require "ks.openstack.glance"
local tags = require "ks.resource.tags"
local fields_of = require "ks.resource.fields"
local source = require "ks.resource.source"
local sync = require "ks.resource.sync"

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


local SOURCE_PROPERTY = source.PROPERTY
-- Our properties: kept when spec.resource.properties does not name them.
local KEPT = { [SOURCE_PROPERTY] = true, [source.REFUSED] = true }
local MUTABLE = { "visibility", "min_disk", "min_ram", "protected" }


local function find_own(cloud, obj)
  local items, err = glance.images(cloud, { tag = resource.uid_tag(obj) })
  if not items then
    return nil, err
  end
  return items[1]
end


local function find(cloud, filter)
  local q = { name = filter.name, visibility = filter.visibility }
  if filter.tags then
    local t = {}
    for i, v in ipairs(filter.tags) do
      t[i] = v
    end
    q.tag = t
  end
  local items, err = glance.images(cloud, q)
  if not items then
    return nil, err
  end
  return fields_of.matching(items, filter)
end


-- The plugin's settings (ctx.config), the same for every reconcile of this version.
local settings = {}


local function create(cloud, obj)
  local r = spec_resource(obj)
  local fields = {
    name = resource.name(obj), container_format = r.container_format,
    disk_format = r.disk_format, visibility = r.visibility, min_disk = r.min_disk,
    min_ram = r.min_ram, protected = r.protected, tags = json.array(tags.initial(obj)),
  }
  for k, v in pairs(r.properties or {}) do
    fields[k] = v
  end
  local src = obj.spec.source
  if src and src.url then
    local err = source.check(src.url, settings)
    if err then
      return nil, err
    end
    fields[SOURCE_PROPERTY] = src.url
  end
  return glance.image_create(cloud, fields)
end


-- The JSON-patch operations that make cur match spec.resource.
local function patch_ops(cur, obj)
  local r = spec_resource(obj)
  local ops = {}
  local function set(k, v)
    ops[#ops + 1] = { op = cur[k] == nil and "add" or "replace", path = glance.pointer(k),
                      value = v }
  end
  local name = os_name(obj)
  if name and name ~= value(cur.name) then
    set("name", name)
  end
  for _, k in ipairs(MUTABLE) do
    if r[k] ~= nil and r[k] ~= value(cur[k]) then
      set(k, r[k])
    end
  end
  local want = tags.wanted(obj, cur.tags)
  if want then
    ops[#ops + 1] = { op = "replace", path = "/tags", value = json.array(want) }
  end
  local put, unset = sync.map(cur, r.properties, KEPT, glance.properties(cur))
  for _, k in ipairs(put) do
    set(k, r.properties[k])
  end
  for _, k in ipairs(unset) do
    ops[#ops + 1] = { op = "remove", path = glance.pointer(k) }
  end
  return ops
end


local function update(cloud, cur, obj)
  local changed = false
  if not (obj.spec and obj.spec.resource) then
    return cur, false
  end
  if cur.status == "queued" and obj.spec.source and resource.has(cur.tags, resource.uid_tag(obj)) then
    local ok, err = source.upload(cloud, cur, obj, settings)
    if not ok then
      return nil, err
    end
    changed = true
  end
  local ops = patch_ops(cur, obj)
  if #ops > 0 then
    local _, err = glance.image_patch(cloud, cur.id, ops)
    if err then
      return nil, err
    end
    changed = true
  end
  if changed then
    return reread(glance.image_get, cloud, cur.id)
  end
  return cur, false
end


-- What Glance cannot change: a change is refused (InvalidConfiguration).
local IMMUTABLE = {
  { "spec.resource.container_format", have = "container_format" },
  { "spec.resource.disk_format", have = "disk_format" },
  { "spec.source.url", have = SOURCE_PROPERTY, is = "the image's data came from" },
}


-- The Instances of the namespace that boot from it: it is not deleted under them.
local USERS = { { kind = "Instance", ref = "spec.imageRef", says = "boots from it" } }


local function delete(cloud, cur)
  if cur.protected == true then
    return nil, { kind = "conflict", message = "the image is protected: set "
      .. "spec.resource.protected to false to let it be deleted" }
  end
  return glance.image_delete(cloud, cur.id)
end


local STATES = {
  active = "available", queued = "progressing", saving = "progressing",
  uploading = "progressing", importing = "progressing", killed = "error",
  deactivated = "error", deleted = "error", pending_delete = "error",
}


local function observe(cur)
  local fields = fields_of.present(cur, { "name", "status", "visibility", "container_format",
    "disk_format", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
    "min_disk", "min_ram", "protected", "tags", "owner" })
  fields.properties = glance.properties(cur)
  local state = STATES[cur.status] or "progressing"
  local msg = "image " .. cur.id .. " is " .. tostring(cur.status)
  if cur.status == "queued" then
    msg = msg .. ": waiting for its data"
  elseif cur.status == "importing" then
    msg = msg .. ": Glance is fetching spec.source.url (web-download)"
  elseif cur.status == "active" then
    msg = msg .. " (" .. tostring(value(cur.size)) .. " bytes)"
  end
  return fields, state, msg
end


return resource.plugin {
  kind = "Image", poll = 2,
  -- The data never enters the plugin's state: the default memory and instructions do.
  limits = { seconds = 3600 },
  config_schema = source.CONFIG,
  get = glance.image_get, find_own = find_own, find = find, create = create,
  update = update, immutable = IMMUTABLE, users = USERS, delete = delete,
  observe = fields_of.observer(observe),
  -- The settings are read at each reconcile (a new version of the file may change them).
  configure = function(config) settings = config end,
}
