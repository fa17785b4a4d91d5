-- ks/resource/refs.lua: the kinds of kupenstack.io and the references between them: the
-- API group, which kinds are cluster-scoped, the ID of a referenced object once it is
-- created (ref_id), a resolver of an object's references (each Available before its
-- resource exists), and the watch mapping that looks at a kind's objects again when a
-- dependency or the namespace changes.
local kube = require "ks.core.kube"

local type = type
local ipairs = ipairs


local _M = {}

_M.GROUP = "kupenstack.io"
_M.VERSION = "v1alpha1"
-- The kinds of this group that are cluster-scoped (crds/: scope Cluster): a reference to
-- one names an object of the cluster, not of the namespace.
_M.CLUSTER_KINDS = { Flavor = true }


-- The kind res of this API group.
function _M.res(kind)
  return { group = _M.GROUP, version = _M.VERSION, kind = kind }
end


-- The plugin table's scope for kind: "Cluster", or nil (namespaced).
function _M.scope(kind)
  return _M.CLUSTER_KINDS[kind] and "Cluster" or nil
end


-- The ID of the kind object named name in ns once it is available; nil and what to wait
-- for otherwise.
function _M.ref_id(ns, kind, name)
  if type(name) ~= "string" then
    return nil, "a " .. kind .. " reference without a name"
  end
  if _M.CLUSTER_KINDS[kind] then
    ns = nil
  end
  local o = kube.get(_M.res(kind), ns, name)
  if not o then
    return nil, kind .. " " .. name .. " does not exist"
  end
  if o.metadata.deletionTimestamp then
    return nil, kind .. " " .. name .. " is being deleted"
  end
  local id = o.status and o.status.id
  if not id then
    return nil, kind .. " " .. name .. " is not created yet"
  end
  return id, nil, o
end


-- Is o's condition Available True?
function _M.is_available(o)
  for _, c in ipairs((o.status and o.status.conditions) or {}) do
    if c.type == "Available" then
      return c.status == "True"
    end
  end
  return false
end


-- A resolver of obj's references, for def.resolve: ref(kind, name) gives the referenced
-- object's ID and the object, or nil when it is missing: not created, or, before obj's
-- resource exists (no status.id), not Available. done(deps) gives deps, or, before the
-- resource exists, nil and the first thing awaited; after, a missing reference no longer
-- holds the resource up: deps.missing says which.
function _M.resolver(obj)
  local ns, created, missing = obj.metadata.namespace, obj.status and obj.status.id, nil
  local function ref(kind, name)
    local id, wait, o = _M.ref_id(ns, kind, name)
    if id and not created and not _M.is_available(o) then
      id, wait = nil, kind .. " " .. name .. " is not Available yet"
    end
    if not id then
      missing = missing or wait
      return nil
    end
    return id, o
  end
  local function done(deps)
    if missing and not created then
      return nil, missing
    end
    deps.missing = missing
    return deps
  end
  return ref, done
end


-- The key of o: "namespace/name", or "name" for a cluster-scoped object.
local function key_of(o)
  local ns = o.metadata.namespace
  return ns and ns .. "/" .. o.metadata.name or o.metadata.name
end


-- A watch's map: the keys of kind's objects in dep's namespace (every one of them when
-- dep_kind, or kind, is cluster-scoped): a dependency or the namespace changed, so each
-- may have something to do now.
function _M.same_namespace(kind, dep_kind)
  return function(dep)
    local opts = {}
    if not _M.CLUSTER_KINDS[kind] and not _M.CLUSTER_KINDS[dep_kind] then
      opts.namespace = dep.metadata.namespace or dep.metadata.name
    end
    local keys = {}
    for i, o in ipairs(kube.list(_M.res(kind), opts)) do
      keys[i] = key_of(o)
    end
    return keys
  end
end


-- The watches of kind: its Namespaces, and each kind of depends.
function _M.watches(kind, depends)
  local watches = {
    { group = "", version = "v1", kind = "Namespace", map = _M.same_namespace(kind, "Namespace") },
  }
  for _, k in ipairs(depends or {}) do
    watches[#watches + 1] = { group = _M.GROUP, version = _M.VERSION, kind = k, scope = _M.scope(k),
                              map = _M.same_namespace(kind, k) }
  end
  return watches
end


return _M
