-- ks/glance.lua: the Glance (image v2) calls the Image plugin makes, for ks.resource:
-- images, JSON-patch updates, data upload, and which fields of an image are its
-- additional properties.
local json = require "ks.core.json"
local openstack = require "ks.openstack"

local pairs = pairs
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


-- Store data (a string) as the image's data; Glance moves it queued -> saving -> active.
function _M.image_upload(cloud, id, data, timeout)
  return request(cloud, "PUT", "/images/" .. escape(id) .. "/file", {
    body = data, timeout = timeout, expect = { 204 },
    headers = { ["Content-Type"] = "application/octet-stream" },
  })
end


function _M.image_delete(cloud, id)
  return request(cloud, "DELETE", "/images/" .. escape(id), { expect = { 204 } })
end


return _M
