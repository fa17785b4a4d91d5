-- ks/resource/cloud.lua: the cloud an object's OpenStack resource lives in, for
-- ks.resource: the operator's own (the clouds.yaml `kupenstack run` was given), scoped to
-- the project of the object's namespace (plugins/project.lua records it on the
-- Namespace), or the one of the Secret spec.cloudCredentialsRef names. Clouds are kept
-- per Lua state: the operator's, one per project, one per Secret version.
local kube = require "ks.core.kube"
local config = require "ks.core.config"
local openstack = require "ks.openstack"
local base64 = require "ks.base64"

local type = type
local tostring = tostring


local _M = {}

_M.PROJECT_ANNOTATION = "kupenstack.io/project-id"
_M.NAMESPACES = { group = "", version = "v1", kind = "Namespace" }
local SECRETS = { group = "", version = "v1", kind = "Secret" }

local operator_cloud
local scoped = {}
local from_secret = {}


-- The operator's cloud, or nil and why there is none.
function _M.operator()
  if operator_cloud then
    return operator_cloud
  end
  local text = config.get("clouds_yaml")
  if not text then
    return nil, "the operator has no clouds.yaml: start it with --set-file "
      .. "clouds_yaml=FILE and --set cloud=NAME"
  end
  local c, err = openstack.connect({ clouds_yaml = text, cloud = config.get("cloud") })
  if not c then
    return nil, "could not use the operator's cloud: " .. tostring(err)
  end
  operator_cloud = c
  return c
end


-- The project of namespace ns, or nil and what to wait for.
function _M.project_of(ns)
  local n = kube.get(_M.NAMESPACES, nil, ns)
  local a = n and n.metadata.annotations
  local id = a and a[_M.PROJECT_ANNOTATION]
  if not id then
    return nil, "namespace " .. ns .. " has no OpenStack project yet (label it "
      .. "kupenstack.io/project=true)"
  end
  return id
end


local function secret_cloud(obj, ref)
  local ns = obj.metadata.namespace
  local s, err = kube.fetch(SECRETS, ns, ref.secretName)
  if not s then
    if type(err) == "table" and err.code == 404 then
      return nil, nil, "Secret " .. ref.secretName .. " (spec.cloudCredentialsRef) does not exist"
    end
    if type(err) == "table" and err.code == 403 then
      return nil, nil, "the operator may not read Secret " .. ref.secretName
        .. " (spec.cloudCredentialsRef): grant its ServiceAccount get on it with a Role and "
        .. "RoleBinding in namespace " .. tostring(ns) .. " (see the README)"
    end
    return nil, err
  end
  local key = ns .. "/" .. ref.secretName .. "@" .. s.metadata.resourceVersion
  if from_secret[key] then
    return from_secret[key]
  end
  local data = s.data or {}
  if not data["clouds.yaml"] then
    return nil, nil, "Secret " .. ref.secretName .. " has no key clouds.yaml"
  end
  local text = base64.decode(data["clouds.yaml"])
  local name = ref.cloudName or (data.cloud and base64.decode(data.cloud))
  local c, cerr = openstack.connect({ clouds_yaml = text, cloud = name })
  if not c then
    return nil, nil, "Secret " .. ref.secretName .. ": " .. tostring(cerr)
  end
  from_secret[key] = c
  return c
end


-- The cloud obj's resource lives in: cloud, err, wait (a message when not ready yet).
-- def.admin: the operator's own scope (flavors are not a project's).
function _M.cloud_for(obj, def)
  local spec = obj.spec or {}
  if spec.cloudCredentialsRef then
    return secret_cloud(obj, spec.cloudCredentialsRef)
  end
  local op, err = _M.operator()
  if not op then
    return nil, err
  end
  if def and def.admin then
    return op
  end
  local pid, wait = _M.project_of(obj.metadata.namespace)
  if not pid then
    return nil, nil, wait
  end
  if not scoped[pid] then
    local c, serr = op:scoped(pid)
    if not c then
      return nil, serr
    end
    scoped[pid] = c
  end
  return scoped[pid]
end


return _M
