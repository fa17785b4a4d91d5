-- plugins/project.lua: Namespace = Project. A Namespace labelled kupenstack.io/project=true
-- (with --set project_namespaces=all: any namespace but kube-* and those labelled false) gets
-- a Keystone project "<cluster>-<namespace>", tagged with the Namespace's UID, in which the
-- operator's user is a member; its ID is recorded on the Namespace. Deleting the Namespace
-- waits until its resources are gone from OpenStack (their own finalizers delete them),
-- then deletes the project, and only then lets the Namespace go.
--
-- What no object of the namespace deletes (kept with onDelete: detach, or made outside
-- KupenStack) keeps the deletion waiting, and the Namespace's Progressing condition names
-- it: nothing is deleted that a user asked to keep, and no project is deleted with
-- resources still in it (they would be left in a project that no longer exists). The
-- annotation kupenstack.io/on-delete=keep-project on the Namespace leaves the project in
-- Keystone, with whatever is in it, and lets the Namespace go.
local kube = require "ks.core.kube"
local config = require "ks.core.config"
local resource = require "ks.resource"
local openstack = require "ks.openstack"
local cinder = require "ks.openstack.cinder"
local keystone = require "ks.openstack.keystone"

local ipairs = ipairs
local tostring = tostring
local concat = table.concat


local LABEL = "kupenstack.io/project"
local ON_DELETE = "kupenstack.io/on-delete"
local MEMBER_ROLE = "member"

-- Which namespaces get a project (the operator's setting project_namespaces, `kupenstack
-- run --set project_namespaces=all`): "labelled" (the default), those labelled
-- kupenstack.io/project=true; "all", every namespace but Kubernetes' own (kube-*) and those
-- labelled kupenstack.io/project=false. The cluster's name (setting cluster, default
-- "kupenstack") prefixes the projects' names.
local WHICH = config.get("project_namespaces") or "labelled"
if WHICH ~= "labelled" and WHICH ~= "all" then
  error("the setting project_namespaces is '" .. WHICH .. "': labelled or all", 0)
end
local ALL = WHICH == "all"

local Project = {
  api = 1, group = "", version = "v1", kind = "Namespace",
  finalizer = "kupenstack.io/project",
  selector = { [LABEL] = ALL and "!false" or "true" },
  skip_names = ALL and { "kube-*" } or nil,
  concurrency = 2, resync = 600,
}


local function project_name(ns)
  return (config.get("cluster") or "kupenstack") .. "-" .. ns.metadata.name
end


function Project.reconcile(ns, ctx)
  local cloud, err = resource.operator()
  if not cloud then
    return resource.failed(err)
  end
  local tag = resource.uid_tag(ns)
  local p
  p, err = keystone.find_project(cloud, project_name(ns))
  if err then
    return resource.failed(err)
  end
  if p and not resource.has(p.tags, tag) then
    return resource.terminal("a Keystone project named " .. project_name(ns)
      .. " exists and was not made for this namespace (no tag " .. tag .. ")")
  end
  if not p then
    p, err = keystone.create_project(cloud, { name = project_name(ns), tags = { tag },
      description = "Kubernetes namespace " .. ns.metadata.name .. " (kupenstack)" })
    if not p then
      return resource.failed(err)
    end
    ctx.event("Normal", "ProjectCreated", "created Keystone project " .. p.name .. " (" .. p.id .. ")")
  end
  local ok, jerr = keystone.grant_own_role(cloud, p.id, MEMBER_ROLE)
  if not ok then
    return resource.failed(jerr)
  end
  local a = ns.metadata.annotations or {}
  if a[resource.PROJECT_ANNOTATION] ~= p.id then
    local _, perr = kube.patch(resource.NAMESPACES, nil, ns.metadata.name,
      { metadata = { annotations = { [resource.PROJECT_ANNOTATION] = p.id } } })
    if perr then
      return nil, "could not record the project on the namespace: " .. tostring(perr)
    end
  end
  return {}
end


-- What is still in project id, as "3 servers, 1 networks"; nil when nothing is. The
-- security group "default", which Neutron makes in every project that uses the network,
-- does not count; volumes only where the cloud has Cinder.
local function leftovers(cloud, id)
  local checks = {
    { "compute", "/servers", "servers", { all_tenants = "1", project_id = id } },
    { "network", "/ports", "ports", { project_id = id } },
    { "network", "/routers", "routers", { project_id = id } },
    { "network", "/floatingips", "floatingips", { project_id = id } },
    { "network", "/networks", "networks", { project_id = id } },
    { "network", "/security-groups", "security_groups", { project_id = id },
      function(sg) return sg.name ~= "default" end },
    { "image", "/images", "images", { owner = id } },
  }
  if cloud:endpoint(cinder.SERVICE) then
    checks[#checks + 1] = { cinder.SERVICE, "/volumes", "volumes",
      { all_tenants = "1", project_id = id } }
  end
  local found = {}
  for _, c in ipairs(checks) do
    local items, err = cloud:list(c[1], c[2], c[3], { query = c[4] })
    if not items then
      return nil, err
    end
    local n = 0
    for _, item in ipairs(items) do
      if not c[5] or c[5](item) then
        n = n + 1
      end
    end
    if n > 0 then
      found[#found + 1] = n .. " " .. c[3]:gsub("_", " ")
    end
  end
  return #found > 0 and concat(found, ", ") or nil
end


function Project.finalize(ns, ctx)
  local annotations = ns.metadata.annotations or {}
  local id = annotations[resource.PROJECT_ANNOTATION]
  if not id then
    return {}
  end
  local cloud, err = resource.operator()
  if not cloud then
    return resource.failed(err)
  end
  local left
  left, err = leftovers(cloud, id)
  if err then
    return resource.failed(err)
  end
  if annotations[ON_DELETE] == "keep-project" then
    ctx.event("Normal", "ProjectKept", "left Keystone project " .. id .. " (" .. ON_DELETE
      .. ": keep-project)" .. (left and ", holding " .. left or ""))
    return {}
  end
  if left then
    return resource.waiting("waiting for the namespace's OpenStack resources to be deleted: "
      .. left .. " in project " .. id .. ". What no object of the namespace deletes "
      .. "(onDelete: detach, or made outside KupenStack) keeps this waiting: delete it in "
      .. "OpenStack, or annotate the namespace " .. ON_DELETE .. "=keep-project to leave the "
      .. "project and what is in it", 5)
  end
  -- Neutron's own group "default" (see leftovers).
  local sgs = cloud:list("network", "/security-groups", "security_groups",
    { query = { project_id = id } }) or {}
  for _, sg in ipairs(sgs) do
    if sg.name == "default" then
      cloud:request("network", "DELETE", "/security-groups/" .. sg.id, { expect = { 204, 404 } })
    end
  end
  local done, derr = keystone.delete_project(cloud, id)
  if not done and not openstack.is_not_found(derr) then
    return resource.failed(derr)
  end
  ctx.event("Normal", "ProjectDeleted", "deleted Keystone project " .. id)
  return {}
end


return Project
