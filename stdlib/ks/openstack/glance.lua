-- ks/openstack/glance.lua: the Glance (image v2) calls the Image plugin makes, for ks.resource:
-- images, JSON-patch updates, the image data (interoperable import with web-download, or
-- a URL streamed into the image by ks.core.transfer), and which fields of an image are its
-- additional properties.
local json = require "ks.core.json"
local transfer = require "ks.core.transfer"
local time = require "ks.core.time"
local openstack = require "ks.openstack"
local catalog = require "ks.openstack.catalog"
local errors = require "ks.openstack.errors"

local pairs = pairs
local ipairs = ipairs
local type = type
local escape = openstack.escape


local _M = {}

_M.PATCH_TYPE = "application/openstack-images-v2.1-json-patch"

-- The fields of an image that are not additional properties: Glance's own, and the ones
-- it manages (os_glance_*, stores; owner_specified.* are the client's).
local CORE = {
  id = true, name = true, status = true, visibility = true, protected = true,
  checksum = true, os_hash_algo = true, os_hash_value = true, size = true,
  virtual_size = true, container_format = true, disk_format = true, min_disk = true,
  min_ram = true, owner = true, created_at = true, updated_at = true, tags = true,
  file = true, schema = true, self = true, locations = true, direct_url = true,
  os_hidden = true, stores = true,
}


-- An image request: the decoded body, or nil and an error (only those).
local function request(cloud, method, path, opts)
  local body, err = cloud:request("image", method, path, opts)
  if body == nil then
    return nil, err
  end
  return body
end


local function is_property(k)
  return not CORE[k] and k:sub(1, 10) ~= "os_glance_" and k:sub(1, 16) ~= "owner_specified."
end
_M.is_property = is_property


-- The additional properties of image (string values only).
function _M.properties(image)
  local out = {}
  for k, v in pairs(image) do
    if type(v) == "string" and is_property(k) then
      out[k] = v
    end
  end
  return out
end


function _M.image_get(cloud, id)
  return request(cloud, "GET", "/images/" .. escape(id))
end


-- The images visible to the token's project matching query (tag = {"a", "b"}: all of them).
function _M.images(cloud, query)
  return cloud:list("image", "/images", "images", { query = query })
end


function _M.image_create(cloud, fields)
  return request(cloud, "POST", "/images", { body = fields, expect = { 201 } })
end


-- Apply JSON-patch ops ({op =, path =, value =}) to the image; the image after.
function _M.image_patch(cloud, id, ops)
  return request(cloud, "PATCH", "/images/" .. escape(id), {
    body = json.encode(json.array(ops)),
    headers = { ["Content-Type"] = _M.PATCH_TYPE },
  })
end


-- The JSON-pointer of field k ("~" and "/" escaped, RFC 6901).
function _M.pointer(k)
  return "/" .. k:gsub("~", "~0"):gsub("/", "~1")
end


-- The import methods the cloud offers (GET /info/import): a set, {["web-download"] =
-- true, ...} ({} for a Glance without interoperable import), or nil and an error.
function _M.import_methods(cloud)
  local body, err = request(cloud, "GET", "/info/import")
  if not body then
    if openstack.is_not_found(err) then
      return {}
    end
    return nil, err
  end
  local out = {}
  local m = type(body["import-methods"]) == "table" and body["import-methods"].value
  for _, v in ipairs(type(m) == "table" and m or {}) do
    out[v] = true
  end
  return out
end


-- Ask Glance to fetch uri into the queued image itself (web-download): it goes importing,
-- then active, or back to queued with os_glance_failed_import set.
function _M.image_import(cloud, id, uri)
  return request(cloud, "POST", "/images/" .. escape(id) .. "/import", {
    body = { method = { name = "web-download", uri = uri } }, expect = { 202 },
  })
end


-- Stream the data at opts.url into the queued image (PUT .../file) without holding it:
-- ks.core.transfer, with opts.allow (the networks the operator allows the source to be
-- in), opts.max_bytes, opts.sha256 (the upload is not completed unless the data has it)
-- and opts.timeout. Returns the transfer's result {bytes, sha256, md5, seconds}, or nil
-- and an error: the transfer's (reason Refused, TooLarge, ChecksumMismatch, SourceStatus,
-- ...; side "source" or "destination"), or Glance's answer as an OpenStack error.
function _M.image_stream(cloud, id, opts)
  local entry, err = cloud:auth()
  if not entry then
    return nil, err
  end
  local base, root = cloud:endpoint("image")
  if not base then
    return nil, root
  end
  local path = "/images/" .. escape(id) .. "/file"
  local url = catalog.join(base, root, path)
  local send = cloud.send
  local res, terr = transfer.stream {
    from = opts.url, to = url, method = "PUT", allow = opts.allow, max_bytes = opts.max_bytes,
    sha256 = opts.sha256, timeout = opts.timeout,
    ca_file = send.ca_file, cert_file = send.cert_file, key_file = send.key_file,
    headers = { ["X-Auth-Token"] = entry.token, ["User-Agent"] = send.user_agent,
                ["Content-Type"] = "application/octet-stream" },
  }
  if not res then
    return nil, terr
  end
  if res.status ~= 204 then
    return nil, errors.from_response({ service = "image", method = "PUT", path = path, url = url },
      { status = res.status, body = res.body, headers = {} })
  end
  return res
end


-- Glance takes an image whose upload failed back to queued by saving the image as it read
-- it when the upload began, which drops a property added in between. So a property is
-- only set on an image whose upload was just dropped once Glance is done with it: the
-- image is out of "saving" and its updated_at is no longer since (its value before the
-- upload), or, if Glance never got that far, after opts.wait seconds (default 30). The
-- property is then added and read back, and added again if a late save took it away.
-- The image after, or nil and an error.
function _M.image_mark_after_upload(cloud, id, k, v, since, opts)
  opts = opts or {}
  local deadline = time.monotonic() + (opts.wait or 30)
  local op = { { op = "add", path = _M.pointer(k), value = v } }
  local patches = 0
  return cloud:wait_for(function()
    local im, err = _M.image_get(cloud, id)
    if not im then
      return nil, err
    end
    local settled = im.status ~= "saving" and im.updated_at ~= since
    if not settled and time.monotonic() < deadline then
      return nil -- Glance may still save the image as it read it before
    end
    if im[k] == v and (settled or patches > 0) then
      return im
    end
    if patches >= 3 then
      return nil, { kind = "transient", message = "image " .. id .. ": the property " .. k
        .. " did not stay after " .. patches .. " tries" }
    end
    patches = patches + 1
    local _, perr = _M.image_patch(cloud, id, op)
    if perr then
      return nil, perr
    end
    return nil -- read back at the next call
  end, { timeout = (opts.wait or 30) + 60, interval = opts.interval or 1,
         what = "image " .. id .. " to settle after a dropped upload" })
end


function _M.image_delete(cloud, id)
  return request(cloud, "DELETE", "/images/" .. escape(id), { expect = { 204 } })
end


return _M
