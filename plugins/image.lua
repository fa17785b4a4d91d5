-- plugins/image.lua: kupenstack.io/v1alpha1 Image -> a Glance image, its data downloaded
-- from spec.source.url.
--
-- The image is created with our UID tag (queued), then its data is fetched with an HTTP
-- GET, checked against spec.source.checksum (SHA-256) when one is given, and stored
-- (PUT .../file): saving, then active. The data passes through the plugin's memory, hence
-- the limits below. A create or upload cut short is taken up again: the queued image is
-- found by its tag and gets its data. Name, visibility, min_disk, min_ram, protected, tags
-- and properties change in place (JSON patch); formats and source cannot (the source URL
-- is kept in the image property kupenstack_source_url). The image is not deleted while an
-- Instance of the namespace boots from it.
--
-- The SHA-256 is computed in Lua (ks.sha256: about 660 million VM instructions per MiB):
-- the limits below allow it for large images, but this host does not apply a plugin's
-- limits yet (ks_plugin_load makes the state with the defaults: 64 MiB, 100 million
-- instructions), so today a checksum can be verified for data up to about 100 KiB only
-- (larger data with a checksum fails that reconcile: instruction budget exceeded).
local http = require "ks.core.http"
local kube = require "ks.core.kube"
local json = require "ks.core.json"
local log = require "ks.core.log"
local time = require "ks.core.time"
local resource = require "ks.resource"
local glance = require "ks.glance"
local sha256 = require "ks.sha256"
local tags = require "ks.tags"
local fields_of = require "ks.fields"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local concat = table.concat
local value = fields_of.value
local reread = fields_of.reread
local os_name = fields_of.os_name


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end


-- The image property that records where the data came from (spec.source.url).
local SOURCE_PROPERTY = "kupenstack_source_url"
local DOWNLOAD_TIMEOUT = 1800
local INSTANCES = resource.res("Instance")

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
  local out = {}
  for _, im in ipairs(items) do
    if (filter.name == nil or im.name == filter.name) and tags.has_all(im.tags, filter.tags) then
      out[#out + 1] = im
    end
  end
  return out
end


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
    fields[SOURCE_PROPERTY] = src.url
  end
  return glance.image_create(cloud, fields)
end


-- The data at spec.source.url, checked against spec.source.checksum; or nil and an error.
local function download(obj)
  local src = obj.spec.source
  local t0 = time.monotonic()
  local res, err = http.request { method = "GET", url = src.url, timeout = DOWNLOAD_TIMEOUT }
  if not res then
    return nil, { kind = "transient", message = "could not download " .. src.url .. ": "
      .. tostring(err) }
  end
  if res.status ~= 200 then
    return nil, { kind = "transient", backoff = 60, message = "could not download "
      .. src.url .. ": HTTP " .. res.status .. " (retrying in 60 s)" }
  end
  local data = res.body or ""
  log.info("downloaded image data", { url = src.url, bytes = #data,
    seconds = time.monotonic() - t0 })
  if src.checksum then
    local sum = sha256.hex(data, function() time.sleep(0) end)
    if sum ~= src.checksum:lower() then
      return nil, { kind = "invalid", message = "the data at " .. src.url .. " has SHA-256 "
        .. sum .. ", not " .. src.checksum:lower() .. " (spec.source.checksum): refused" }
    end
  else
    log.info("no spec.source.checksum: the image data is not verified", { url = src.url })
  end
  return data
end


-- Give a queued image of ours its data.
local function upload(cloud, cur, obj)
  local data, err = download(obj)
  if not data then
    return nil, err
  end
  local _, uerr = glance.image_upload(cloud, cur.id, data, DOWNLOAD_TIMEOUT)
  if uerr then
    return nil, uerr
  end
  log.info("uploaded image data", { id = cur.id, bytes = #data })
  return true
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
  if r.properties then
    for k, v in pairs(r.properties) do
      if cur[k] ~= v then
        set(k, v)
      end
    end
    for k in pairs(glance.properties(cur)) do
      if r.properties[k] == nil and k ~= SOURCE_PROPERTY then
        ops[#ops + 1] = { op = "remove", path = glance.pointer(k) }
      end
    end
  end
  return ops
end


local function update(cloud, cur, obj)
  local changed = false
  if not (obj.spec and obj.spec.resource) then
    return cur, false
  end
  if cur.status == "queued" and obj.spec.source and resource.has(cur.tags, resource.uid_tag(obj)) then
    local ok, err = upload(cloud, cur, obj)
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


local function immutable(obj, cur)
  local spec = obj.spec or {}
  local r = spec.resource
  if not r then
    return nil
  end
  for _, k in ipairs({ "container_format", "disk_format" }) do
    local have = value(cur[k])
    if r[k] and have and r[k] ~= have then
      return "spec.resource." .. k .. " is immutable: the image has " .. tostring(have)
        .. "; delete and recreate the Image to change it"
    end
  end
  local src = spec.source
  if src and cur[SOURCE_PROPERTY] and src.url ~= cur[SOURCE_PROPERTY] then
    return "spec.source is immutable: the image's data came from " .. cur[SOURCE_PROPERTY]
      .. "; delete and recreate the Image to change it"
  end
  return nil
end


-- The Instances of obj's namespace that boot from it.
local function users(obj)
  local names = {}
  for _, inst in ipairs(kube.list(INSTANCES, { namespace = obj.metadata.namespace })) do
    local ref = inst.spec and inst.spec.imageRef
    if ref and ref.name == obj.metadata.name then
      names[#names + 1] = inst.metadata.name
    end
  end
  return names
end


local function delete(cloud, cur, obj)
  local u = users(obj)
  if #u > 0 then
    return nil, { kind = "conflict", message = "Instance " .. concat(u, ", ")
      .. " boots from it" }
  end
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
  local fields = resource.pick(cur, { "name", "status", "visibility", "container_format",
    "disk_format", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
    "min_disk", "min_ram", "protected", "tags", "owner" })
  for k, v in pairs(fields) do
    if v == json.null then
      fields[k] = nil
    end
  end
  fields.properties = glance.properties(cur)
  local state = STATES[cur.status] or "progressing"
  local msg = "image " .. cur.id .. " is " .. tostring(cur.status)
  if cur.status == "queued" then
    msg = msg .. ": waiting for its data"
  elseif cur.status == "active" then
    msg = msg .. " (" .. tostring(value(cur.size)) .. " bytes)"
  end
  return fields, state, msg
end


local plugin = resource.plugin {
  kind = "Image", poll = 2,
  limits = { memory_mb = 1024, seconds = 3600, instructions = 1e12 },
  get = glance.image_get, find_own = find_own, find = find, create = create,
  update = update, immutable = immutable, delete = delete, observe = fields_of.observer(observe),
}

-- An Instance that changes (or goes) may let its Image be deleted: look at that Image.
plugin.watches[#plugin.watches + 1] = {
  group = resource.GROUP, version = resource.VERSION, kind = "Instance",
  map = function(inst)
    local ref = inst.spec and inst.spec.imageRef
    if not ref or not ref.name then
      return {}
    end
    return { inst.metadata.namespace .. "/" .. ref.name }
  end,
}

return plugin
