-- ks/openstack/keystone.lua: the Keystone (identity v3) calls the Project plugin makes:
-- projects found by name, created with tags, deleted, and a role of the calling user on a
-- project. Each takes a client of ks.openstack (connect) and returns what Keystone
-- answered, or nil and a classified error.
--
--   local keystone = require "ks.openstack.keystone"
--   local p, err = keystone.find_project(cloud, "kupenstack-team-a")

local _M = {}


-- The project named name (nil when there is none), or nil and an error.
function _M.find_project(cloud, name)
  local body, err = cloud:request("identity", "GET", "/projects", { query = { name = name } })
  if not body then
    return nil, err
  end
  return body.projects[1]
end


-- A new project from fields {name, description, tags, domain_id} (domain_id defaults to
-- the caller's project domain); the project, or nil and an error.
function _M.create_project(cloud, fields)
  local auth = cloud:auth()
  local body, err = cloud:request("identity", "POST", "/projects", { body = { project = {
    name = fields.name, description = fields.description, tags = fields.tags,
    domain_id = fields.domain_id or (auth and auth.project_domain_id) or "default",
  } } })
  if not body then
    return nil, err
  end
  return body.project
end


-- Give the calling user the role named role on project id (idempotent): true, or nil and
-- an error (a string when Keystone has no such role).
function _M.grant_own_role(cloud, id, role)
  local auth, err = cloud:auth()
  if not auth then
    return nil, err
  end
  local roles
  roles, err = cloud:request("identity", "GET", "/roles", { query = { name = role } })
  if not roles then
    return nil, err
  end
  if not roles.roles[1] then
    return nil, "Keystone has no role named " .. role
  end
  return cloud:request("identity", "PUT", "/projects/" .. id .. "/users/" .. auth.user_id
    .. "/roles/" .. roles.roles[1].id, { expect = { 204 } })
end


-- Delete project id; a project already gone is not an error. true, or nil and an error.
function _M.delete_project(cloud, id)
  return cloud:request("identity", "DELETE", "/projects/" .. id, { expect = { 204, 404 } })
end


return _M
