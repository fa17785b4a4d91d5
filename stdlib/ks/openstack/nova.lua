-- ks/openstack/nova.lua: the Nova calls the Flavor, KeyPair and Instance plugins make, for
-- ks.resource. Every request asks for one microversion (2.79: server tags at creation
-- need 2.52, flavor descriptions 2.55, extra specs inside a flavor 2.61), so the shapes
-- the plugins read do not depend on the cloud's default.
local json = require "ks.core.json"
local openstack = require "ks.openstack"

local ipairs = ipairs
local next = next
local escape = openstack.escape


local _M = {}

_M.MICROVERSION = "2.79"


-- A compute request at our microversion: the decoded body, or nil and an error (only
-- those: callers test the error, not the response that cloud:request also returns).
local function request(cloud, method, path, opts)
  opts = opts or {}
  opts.microversion = opts.microversion or _M.MICROVERSION
  local body, err = cloud:request("compute", method, path, opts)
  if body == nil then
    return nil, err
  end
  return body
end
_M.request = request


local function list(cloud, path, key, query)
  return cloud:list("compute", path, key, { query = query, microversion = _M.MICROVERSION })
end


-- Flavors ---------------------------------------------------------------------------------

function _M.flavor_get(cloud, id)
  local body, err = request(cloud, "GET", "/flavors/" .. escape(id))
  return body and body.flavor, err
end


-- Every flavor, public and private (is_public=None needs an admin), with extra specs.
function _M.flavors(cloud)
  return list(cloud, "/flavors/detail", "flavors", { is_public = "None" })
end


function _M.flavor_create(cloud, flavor)
  local body, err = request(cloud, "POST", "/flavors", { body = { flavor = flavor } })
  return body and body.flavor, err
end


function _M.flavor_set_description(cloud, id, description)
  return request(cloud, "PUT", "/flavors/" .. escape(id),
    { body = { flavor = { description = description } } })
end


function _M.extra_specs_set(cloud, id, specs)
  return request(cloud, "POST", "/flavors/" .. escape(id) .. "/os-extra_specs",
    { body = { extra_specs = specs } })
end


function _M.extra_spec_unset(cloud, id, key)
  return request(cloud, "DELETE", "/flavors/" .. escape(id) .. "/os-extra_specs/" .. escape(key),
    { expect = { 200, 202, 204 } })
end


-- The projects a private flavor is shared with: a list of IDs.
function _M.flavor_access(cloud, id)
  local body, err = request(cloud, "GET", "/flavors/" .. escape(id) .. "/os-flavor-access")
  if not body then
    return nil, err
  end
  local ids = {}
  for i, a in ipairs(body.flavor_access or {}) do
    ids[i] = a.tenant_id
  end
  return ids
end


function _M.flavor_add_access(cloud, id, project_id)
  return request(cloud, "POST", "/flavors/" .. escape(id) .. "/action",
    { body = { addTenantAccess = { tenant = project_id } } })
end


function _M.flavor_remove_access(cloud, id, project_id)
  return request(cloud, "POST", "/flavors/" .. escape(id) .. "/action",
    { body = { removeTenantAccess = { tenant = project_id } } })
end


function _M.flavor_delete(cloud, id)
  return request(cloud, "DELETE", "/flavors/" .. escape(id), { expect = { 202, 204 } })
end


-- Key pairs: they belong to the user, not to a project; the name is their ID -------------

local function keypair(kp)
  if kp then
    kp.id = kp.name
  end
  return kp
end


function _M.keypair_get(cloud, name)
  local body, err = request(cloud, "GET", "/os-keypairs/" .. escape(name))
  return body and keypair(body.keypair), err
end


function _M.keypairs(cloud)
  local items, err = list(cloud, "/os-keypairs", "keypairs")
  if not items then
    return nil, err
  end
  local out = {}
  for i, it in ipairs(items) do
    out[i] = keypair(it.keypair or it)
  end
  return json.array(out)
end


function _M.keypair_create(cloud, kp)
  local body, err = request(cloud, "POST", "/os-keypairs", { body = { keypair = kp } })
  return body and keypair(body.keypair), err
end


function _M.keypair_delete(cloud, name)
  return request(cloud, "DELETE", "/os-keypairs/" .. escape(name), { expect = { 202, 204 } })
end


-- Servers ---------------------------------------------------------------------------------

function _M.server_get(cloud, id)
  local body, err = request(cloud, "GET", "/servers/" .. escape(id))
  return body and body.server, err
end


-- The servers (with details) of the token's project matching query (Nova's filters:
-- tags = "a,b" has all of them; name is a regular expression).
function _M.servers(cloud, query)
  return list(cloud, "/servers/detail", "servers", query)
end


-- A new server; its ID (the create answer has little else), or nil and an error. hints:
-- optional os:scheduler_hints ({group = server group ID}).
function _M.server_create(cloud, server, hints)
  local req = { server = server }
  if hints and next(hints) then
    req["os:scheduler_hints"] = hints
  end
  local body, err = request(cloud, "POST", "/servers", { body = req })
  return body and body.server and body.server.id, err
end


function _M.server_update(cloud, id, fields)
  return request(cloud, "PUT", "/servers/" .. escape(id), { body = { server = fields } })
end


-- Replace all the server's metadata.
function _M.server_set_metadata(cloud, id, metadata)
  return request(cloud, "PUT", "/servers/" .. escape(id) .. "/metadata",
    { body = { metadata = metadata } })
end


-- Replace all the server's tags.
function _M.server_set_tags(cloud, id, tags)
  return request(cloud, "PUT", "/servers/" .. escape(id) .. "/tags",
    { body = { tags = json.array(tags) } })
end


-- POST an action ({"os-start": null}, ...) to the server.
function _M.server_action(cloud, id, name, args)
  if args == nil then
    args = json.null
  end
  return request(cloud, "POST", "/servers/" .. escape(id) .. "/action",
    { body = { [name] = args }, expect = { 200, 202, 204 } })
end


function _M.server_delete(cloud, id)
  return request(cloud, "DELETE", "/servers/" .. escape(id), { expect = { 202, 204 } })
end


-- Server groups (the InstanceSet's placement) -----------------------------------------------

-- The project's server groups (name, policy, members, project_id at 2.79).
function _M.server_groups(cloud)
  return list(cloud, "/os-server-groups", "server_groups")
end


function _M.server_group_get(cloud, id)
  local body, err = request(cloud, "GET", "/os-server-groups/" .. escape(id))
  return body and body.server_group, err
end


-- A new server group (policy: affinity, anti-affinity, soft-affinity or soft-anti-affinity);
-- the group, or nil and an error.
function _M.server_group_create(cloud, name, policy)
  local body, err = request(cloud, "POST", "/os-server-groups",
    { body = { server_group = { name = name, policy = policy } } })
  return body and body.server_group, err
end


function _M.server_group_delete(cloud, id)
  return request(cloud, "DELETE", "/os-server-groups/" .. escape(id), { expect = { 202, 204 } })
end


-- Nil when server group id may be named in a server's scheduler hints by cloud's project
-- (it exists and belongs to that project: Nova itself would let a server join the group
-- of another project by its ID), else an error.
function _M.server_group_check(cloud, id)
  local g, err = _M.server_group_get(cloud, id)
  if not g then
    if openstack.is_not_found(err) then
      -- Nova answers 404 for another project's group to a token of this project.
      return { kind = "invalid", message = "spec.resource.scheduler_hints.group: no server "
        .. "group " .. id .. " in this namespace's project" }
    end
    return err
  end
  local pid, perr = cloud:project_id()
  if not pid then
    return perr
  end
  if g.project_id ~= pid then
    return { kind = "invalid", message = "spec.resource.scheduler_hints.group: server group "
      .. id .. " is not of this namespace's project" }
  end
  return nil
end


-- Nova's power_state numbers as the Instance status names them.
_M.POWER_STATES = {
  [0] = "Unknown", [1] = "Running", [3] = "Paused", [4] = "Shutoff", [6] = "Crashed",
  [7] = "Suspended",
}


return _M
