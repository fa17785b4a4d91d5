-- ks/openstack/cinder.lua: the Cinder (block-storage v3) calls the Volume plugin makes, for
-- ks.resource. Cinder volumes have no tags; metadata stands in for them, and the volume
-- list filters on it (metadata={"k": "v"}).
local json = require "ks.core.json"
local openstack = require "ks.openstack"

local escape = openstack.escape


local _M = {}

_M.SERVICE = "block-storage"
_M.MICROVERSION = "3.50"


-- A volume request at our microversion: the decoded body, or nil and an error (only those).
local function request(cloud, method, path, opts)
  opts = opts or {}
  opts.microversion = opts.microversion or _M.MICROVERSION
  local body, err = cloud:request(_M.SERVICE, method, path, opts)
  if body == nil then
    return nil, err
  end
  return body
end


function _M.volume_get(cloud, id)
  local body, err = request(cloud, "GET", "/volumes/" .. escape(id))
  return body and body.volume, err
end


-- The project's volumes (with details) matching query; query.metadata may be a table
-- (every key and value must be on the volume).
function _M.volumes(cloud, query)
  local q = {}
  for k, v in pairs(query or {}) do
    q[k] = v
  end
  if type(q.metadata) == "table" then
    q.metadata = json.encode(q.metadata)
  end
  return cloud:list(_M.SERVICE, "/volumes/detail", "volumes",
    { query = q, microversion = _M.MICROVERSION })
end


function _M.volume_create(cloud, volume)
  local body, err = request(cloud, "POST", "/volumes", { body = { volume = volume } })
  return body and body.volume, err
end


function _M.volume_update(cloud, id, fields)
  return request(cloud, "PUT", "/volumes/" .. escape(id), { body = { volume = fields } })
end


-- Replace all the volume's metadata.
function _M.volume_set_metadata(cloud, id, metadata)
  return request(cloud, "PUT", "/volumes/" .. escape(id) .. "/metadata",
    { body = { metadata = metadata } })
end


-- POST an action ({"os-extend": {...}}, ...) to the volume.
function _M.volume_action(cloud, id, name, args)
  return request(cloud, "POST", "/volumes/" .. escape(id) .. "/action",
    { body = { [name] = args }, expect = { 200, 202, 204 } })
end


function _M.volume_delete(cloud, id)
  return request(cloud, "DELETE", "/volumes/" .. escape(id), { expect = { 202, 204 } })
end


return _M
