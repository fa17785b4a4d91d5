-- plugins/image.lua: kupenstack.io/v1alpha1 Image -> a Glance image, its data fetched
-- from spec.source.url.
--
-- The image is created with our UID tag (queued), then gets its data in one of two ways:
--   web-download  Glance's interoperable import (POST .../import): Glance fetches the URL
--                 itself (importing, then active). Used when the cloud offers it (GET
--                 /v2/info/import) and spec.source has no checksum: Glance cannot check a
--                 SHA-256 given beforehand, so a checksum always means stream.
--   stream        the host streams the URL's data into the image (PUT .../file) through
--                 ks.core.transfer: 1 MiB in flight at most, never in the plugin's memory,
--                 SHA-256 computed in C as it passes; with spec.source.checksum the upload
--                 is only completed when the data has it, so a mismatch leaves the image
--                 queued, without data (marked with kupenstack_refused_sha256, so it is not
--                 fetched again for the same checksum).
-- The setting source_method forces one ("auto" by default; web-download only for
-- images without a checksum).
--
-- The URL is the tenant's, and the fetch is made from the operator's place in the network
-- (or Glance's): spec.source.url is refused when its name resolves to a loopback,
-- link-local (cloud metadata), private or other non-public address (host/netguard.h),
-- unless the operator's setting allow_source_networks names that network. The check is
-- made before the image is created and before each fetch; a stream checks every
-- connection it opens, redirects included, on the address it really connects to. With
-- web-download Glance fetches, after our check of the name: Glance's own import filtering
-- (glance-api.conf [import_filtering_opts]) applies too, and is what stops a redirect or
-- a name that resolves differently for Glance.
--
-- A create or upload cut short is taken up again: the queued image is found by its tag and
-- gets its data. Name, visibility, min_disk, min_ram, protected, tags and properties
-- change in place (JSON patch); formats and source cannot (the source URL is kept in the
-- image property kupenstack_source_url). The image is not deleted while an Instance of the
-- namespace boots from it.
local json = require "ks.core.json"
local log = require "ks.core.log"
local transfer = require "ks.core.transfer"
local resource = require "ks.resource"
local glance = require "ks.openstack.glance"
local tags = require "ks.resource.tags"
local fields_of = require "ks.resource.fields"

local pairs = pairs
local ipairs = ipairs
local type = type
local tostring = tostring
local floor = math.floor
local value = fields_of.value
local reread = fields_of.reread
local os_name = fields_of.os_name


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end


-- The image property that records where the data came from (spec.source.url).
local SOURCE_PROPERTY = "kupenstack_source_url"
-- The image property that records the SHA-256 of data refused for its checksum.
local REFUSED_PROPERTY = "kupenstack_refused_sha256"
local DOWNLOAD_TIMEOUT = 3000

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


-- The plugin's settings (ctx.config), the same for every reconcile of this version.
local settings = {}


local function refused(why)
  return { kind = "invalid", message = "spec.source.url: " .. why .. ": refused (the operator "
    .. "allows such networks with the Image plugin's setting allow_source_networks)" }
end


-- nil when spec.source.url may be fetched; else the error to stop with.
local function check_source(url)
  local ok, err = transfer.check(url, settings.allow_source_networks)
  if ok then
    return nil
  end
  if err.reason == "Refused" then
    return refused(err.message)
  end
  if err.reason == "BadURL" then
    return { kind = "invalid", message = "spec.source.url: " .. err.message }
  end
  return { kind = "transient", backoff = 60, message = "spec.source.url: " .. err.message
    .. " (retrying in 60 s)" }
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
    local err = check_source(src.url)
    if err then
      return nil, err
    end
    fields[SOURCE_PROPERTY] = src.url
  end
  return glance.image_create(cloud, fields)
end


-- How the data of obj gets into Glance: "web-download" or "stream"; or nil and an error.
local function method_for(cloud, obj)
  local want = settings.source_method or "auto"
  if want == "stream" or obj.spec.source.checksum then
    return "stream"
  end
  local methods, err = glance.import_methods(cloud)
  if not methods then
    return nil, err
  end
  if methods["web-download"] then
    return "web-download"
  end
  if want == "web-download" then
    return nil, { kind = "invalid", message = "the Image plugin's source_method is web-download, "
      .. "but this cloud's Glance does not offer it (GET /v2/info/import)" }
  end
  return "stream"
end


-- The error for a stream that failed; a refused checksum marks the image first.
local function stream_error(cloud, cur, src, err)
  local r = err.reason
  if r == "Refused" then
    return refused((err.message:gsub(": refused$", "")))
  end
  if r == "TooLarge" then
    return { kind = "invalid", message = "spec.source.url: the data is larger than "
      .. tostring(settings.max_image_mb) .. " MiB (the Image plugin's setting max_image_mb)" }
  end
  if r == "ChecksumMismatch" then
    local _, merr = glance.image_mark_after_upload(cloud, cur.id, REFUSED_PROPERTY, err.sha256,
                                                   cur.updated_at)
    if merr then
      log.warn("could not mark the image with the refused SHA-256 (it is fetched again)",
        { id = cur.id, error = tostring(merr) })
    end
    return { kind = "invalid", message = "the data at " .. src.url .. " has SHA-256 "
      .. err.sha256 .. ", not " .. src.checksum:lower() .. " (spec.source.checksum): refused" }
  end
  if r == "SourceStatus" then
    return { kind = "transient", backoff = 60, message = "could not download " .. src.url
      .. ": HTTP " .. tostring(floor(err.source_status)) .. " (retrying in 60 s)" }
  end
  return { kind = "transient", message = "could not stream " .. src.url .. " into image "
    .. cur.id .. " (" .. tostring(err.side or "") .. "): " .. tostring(err) }
end


local function stream(cloud, cur, src)
  local res, err = glance.image_stream(cloud, cur.id, {
    url = src.url, allow = settings.allow_source_networks, sha256 = src.checksum,
    max_bytes = (settings.max_image_mb or 0) * 1048576, timeout = DOWNLOAD_TIMEOUT,
  })
  if not res then
    if type(err) == "table" and err.reason then
      return nil, stream_error(cloud, cur, src, err)
    end
    return nil, err
  end
  log.info("streamed image data", { id = cur.id, url = src.url, bytes = res.bytes,
    sha256 = res.sha256, seconds = res.seconds })
  return true
end


-- Give a queued image of ours its data.
local function upload(cloud, cur, obj)
  local src = obj.spec.source
  local mark = cur[REFUSED_PROPERTY]
  if type(mark) == "string" and src.checksum and src.checksum:lower() ~= mark then
    return nil, { kind = "invalid", message = "the data at " .. src.url .. " has SHA-256 "
      .. mark .. ", not " .. src.checksum:lower() .. " (spec.source.checksum): refused" }
  end
  local cerr = check_source(src.url)
  if cerr then
    return nil, cerr
  end
  local how, err = method_for(cloud, obj)
  if not how then
    return nil, err
  end
  if how == "stream" then
    return stream(cloud, cur, src)
  end
  local failed = value(cur.os_glance_failed_import)
  local _, ierr = glance.image_import(cloud, cur.id, src.url)
  if ierr then
    return nil, ierr
  end
  log.info("asked Glance to import image data (web-download)", { id = cur.id, url = src.url })
  if failed and failed ~= "" then
    return nil, { kind = "transient", backoff = 60, message = "Glance could not import "
      .. src.url .. " (web-download failed: os_glance_failed_import " .. tostring(failed)
      .. "); asked again, next look in 60 s" }
  end
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
      if r.properties[k] == nil and k ~= SOURCE_PROPERTY and k ~= REFUSED_PROPERTY then
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
  config_schema = {
    allow_source_networks = { type = "string", default = "",
      description = "networks (CIDRs, comma-separated) spec.source.url may reach although "
        .. "they are loopback, link-local or private; empty: public addresses only" },
    source_method = { type = "string", default = "auto", enum = { "auto", "web-download", "stream" },
      description = "how image data gets into Glance: web-download (Glance fetches; an "
        .. "image with spec.source.checksum is always streamed), stream (the host streams "
        .. "it), auto (web-download when offered and no checksum is given)" },
    max_image_mb = { type = "number", default = 102400,
      description = "the largest image data streamed, in MiB" },
  },
  get = glance.image_get, find_own = find_own, find = find, create = create,
  update = update, immutable = IMMUTABLE, users = USERS, delete = delete,
  observe = fields_of.observer(observe),
  -- The settings are read at each reconcile (a new version of the file may change them).
  configure = function(config) settings = config end,
}
