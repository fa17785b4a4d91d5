-- ks/resource.lua: what every OpenStack resource kind does the same way, so that a kind's
-- plugin only says how to get, find, create, update, observe and delete its resource.
--
--   return resource.plugin {
--     kind = "Network", service = "network",
--     depends = { "Subnet" },           -- kinds whose changes re-reconcile ours (refs)
--     get = function(cloud, id, obj) end, -- the resource, or nil and an error (404: not_found)
--     find_own = function(cloud, obj) end, -- the one we created for obj (by the UID tag), or nil
--     find = function(cloud, filter, obj) end, -- import by filter: a list
--     resolve = function(obj) end,      -- the references: deps, or nil and what is awaited
--     create = function(cloud, obj, deps) end,
--     update = function(cloud, current, obj, deps) end, -- current', changed
--     immutable = { {"spec.resource.x", have = "x"}, ... }, -- what spec may not change
--                                       -- (ks.resource.immutable), or function(obj, current,
--                                       -- deps) giving a message when spec changed one
--     users = { {kind = "Instance", ref = "spec.imageRef"} }, -- optional: who uses me: the
--                                       -- deletion waits for them (ks.resource.users)
--     status = function(status, obj) end, -- optional: adds to the status (kept fields)
--     configure = function(config) end, -- optional: the plugin's settings (ctx.config),
--                                       -- given before each reconcile and finalize
--     finish = function(res, obj, ctx) end, -- optional: the reconcile's result, last word
--     delete = function(cloud, current, obj) end,
--     observe = function(current, obj) end, -- fields, "available"|"progressing"|"error", msg
--     list = function(cloud) end,       -- optional: the project's resources on their way, for polls
--     recover = function(cloud, current, obj, ctx, deps) end, -- optional: current' to go on
--                                       -- with, or nil and a result (self-healing)
--     gone = function(cloud, obj, ctx, deps) end, -- optional: status.id's resource is gone:
--                                       -- one to adopt, or nil and a result, or nothing (create)
--     consumes = { ... },               -- optional: the plugin's 'consumes' (message bus)
--     max_creating = 8,                 -- optional: see below (or function(ctx) giving it)
--   }
--
-- The flow: the cloud (the namespace's project, or spec.cloudCredentialsRef); the
-- references, waited for with a condition naming them; the resource by status.id, by
-- spec.import, by our UID tag (a create whose answer was lost), or created; updated in
-- place; observed into status. Finalize deletes it (unless unmanaged, onDelete: detach, or
-- imported without onDelete: delete), waits while something still uses it, and until it
-- is gone.
--
-- A progressing resource is looked at again every def.poll seconds (default 3; more often
-- while many share a def.list); def.list and def.max_creating pace the polls and the
-- creates (ks.resource.pace).
local kube = require "ks.core.kube"
local fault = require "ks.core.fault"
local openstack = require "ks.openstack"
local clouds = require "ks.resource.cloud"
local pace = require "ks.resource.pace"
local k8s = require "ks.k8s"
local time = require "ks.core.time"
local errors = require "ks.openstack.errors"
local immutable = require "ks.resource.immutable"
local users = require "ks.resource.users"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local getmetatable = getmetatable
local concat = table.concat
local floor = math.floor


local _M = {}

_M.GROUP = "kupenstack.io"
_M.VERSION = "v1alpha1"
_M.FINALIZER = "kupenstack.io/openstack"
_M.PROJECT_ANNOTATION = clouds.PROJECT_ANNOTATION
_M.UID_TAG_PREFIX = "kupenstack-uid-"
_M.NAMESPACES = clouds.NAMESPACES
-- The cloud an object's resource lives in (see ks.resource.cloud).
_M.operator, _M.project_of, _M.cloud_for = clouds.operator, clouds.project_of, clouds.cloud_for
-- Is an object's condition Available True?
_M.is_available = pace.is_available
-- The kinds of this group that are cluster-scoped (crds/: scope Cluster): a reference to
-- one names an object of the cluster, not of the namespace.
_M.CLUSTER_KINDS = { Flavor = true }
-- A create that got no answer (a timeout after the request went out) may still be made
-- by the service: for this long the object only looks for it (find_own) before creating
-- again. Kept in this Lua state: a restarted host does not remember it.
_M.UNANSWERED_GRACE = 180
local unanswered = {} -- object UID -> time.now() of a create that got no answer


-- The tag that marks a resource as the one created for obj.
function _M.uid_tag(obj)
  return _M.UID_TAG_PREFIX .. obj.metadata.uid
end


-- The OpenStack name for obj: spec.resource.name, else metadata.name.
function _M.name(obj)
  local r = obj.spec and obj.spec.resource
  return (r and r.name) or obj.metadata.name
end


local function cond(ctype, status, reason, message)
  return { type = ctype, status = status, reason = reason, message = message }
end


function _M.available(message)
  return {
    cond("Available", "True", "Success", message or "the resource is ready"),
    cond("Progressing", "False", "Success", "nothing to do"),
  }
end


function _M.progressing(reason, message)
  return {
    cond("Available", "False", reason, message),
    cond("Progressing", "True", reason, message),
  }
end


-- A result that waits: Progressing with reason Waiting, and another look later.
function _M.waiting(message, seconds)
  return { conditions = _M.progressing("Waiting", message), requeue_after = seconds or 10 }
end


-- A result for an OpenStack (or other) error, keeping status: invalid input is terminal,
-- quota waits long, the rest is retried with the host's backoff.
-- One line for an error value: its __tostring, its message, or its fields.
function _M.describe(err)
  if type(err) ~= "table" then
    return tostring(err)
  end
  local mt = getmetatable(err)
  if mt and mt.__tostring then
    return tostring(err)
  end
  if err.message then
    return tostring(err.message)
  end
  local parts = {}
  for k, v in pairs(err) do
    parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
  end
  return "{" .. concat(parts, ", ") .. "}"
end


function _M.failed(err, status)
  local msg = _M.describe(err)
  if type(err) == "table" and err.kind == "invalid" then
    return { status = status, error = msg, terminal = true, reason = "InvalidConfiguration" }
  end
  if type(err) == "table" and err.kind == "quota" then
    return { status = status, error = msg .. " (quota: retrying in " .. (err.backoff or 60) .. " s)",
             reason = "Transient", backoff = err.backoff or 60 }
  end
  if type(err) == "table" and err.backoff then
    return { status = status, error = msg, reason = "Transient", backoff = err.backoff }
  end
  return { status = status, error = msg, reason = "Transient" }
end


local function terminal(message, status, reason)
  return { status = status, error = message, terminal = true,
           reason = reason or "InvalidConfiguration" }
end
_M.terminal = terminal


-- The kind res of this API group.
function _M.res(kind)
  return { group = _M.GROUP, version = _M.VERSION, kind = kind }
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


local function find_unique(def, cloud, obj, imp)
  if imp.id then
    local cur, err = def.get(cloud, imp.id, obj)
    if not cur then
      if openstack.is_not_found(err) then
        return nil, nil, "no " .. def.kind .. " with id " .. imp.id .. " (spec.import.id)"
      end
      return nil, err
    end
    return cur
  end
  local list, err = def.find(cloud, imp.filter or {}, obj)
  if not list then
    return nil, err
  end
  if #list == 0 then
    return nil, nil, "no " .. def.kind .. " matches spec.import.filter"
  end
  if #list > 1 then
    local ids = {}
    for i, r in ipairs(list) do
      ids[i] = r.id
    end
    return nil, { kind = "invalid", message = "spec.import.filter matches " .. #list .. " "
      .. def.kind .. "s (" .. concat(ids, ", ") .. "); it must match exactly one" }
  end
  return list[1]
end


-- The settings every kind has (NAME.config.yaml), beside the plugin's own.
local IMPORT_RETRY = 30
local COMMON_CONFIG = {
  import_retry = { type = "number", default = IMPORT_RETRY,
    description = "seconds between looks for the resource while spec.import matches none" },
}

local function config_schema(own)
  local schema = {}
  for k, v in pairs(COMMON_CONFIG) do
    schema[k] = v
  end
  for k, v in pairs(own or {}) do
    schema[k] = v
  end
  return schema
end


-- The resource for obj: by status.id, import, our tag, or a new one. Returns current,
-- result (an early result to return instead), adopted.
local function obtain(def, cloud, obj, ctx, deps)
  local spec, st = obj.spec or {}, obj.status or {}
  local policy = spec.managementPolicy or "managed"
  local cur, err
  if st.id then
    cur = pace.polled(def, cloud, obj)
    if not cur then
      cur, err = def.get(cloud, st.id, obj)
    end
    if not cur and not openstack.is_not_found(err) then
      return nil, _M.failed(err)
    end
    if cur then
      return cur
    end
    if policy == "unmanaged" or spec.import then
      return nil, { status = { id = st.id }, conditions = _M.progressing("NotFound",
        def.kind .. " " .. st.id .. " no longer exists in OpenStack"), requeue_after = 60 }
    end
    if def.gone then
      local own, early = def.gone(cloud, obj, ctx, deps)
      if own or early then
        return own, early
      end
    end
    ctx.event("Warning", "Drift", def.kind .. " " .. st.id
      .. " was deleted outside KupenStack; creating it again")
  end
  if spec.import then
    local wait
    cur, err, wait = find_unique(def, cloud, obj, spec.import)
    if wait then
      return nil, _M.waiting(wait, (ctx.config or {}).import_retry or IMPORT_RETRY)
    end
    if not cur then
      if type(err) == "table" and err.kind == "invalid" and not err.status then
        return nil, terminal(err.message)
      end
      return nil, _M.failed(err)
    end
    if st.id ~= cur.id then
      ctx.event("Normal", "Adopted", "adopted " .. def.kind .. " " .. cur.id)
    end
    return cur, nil, true
  end
  if policy == "unmanaged" then
    return nil, terminal("managementPolicy unmanaged observes an existing resource: set "
      .. "spec.import")
  end
  local wait, again = pace.take(def, obj, ctx)
  if wait then
    return nil, _M.waiting(wait, again)
  end
  cur, err = def.find_own(cloud, obj)
  if err then
    pace.release(def, obj)
    return nil, _M.failed(err)
  end
  local uid = obj.metadata.uid
  if cur then
    unanswered[uid] = nil
    ctx.event("Normal", "Adopted", "found " .. def.kind .. " " .. cur.id
      .. " created for this object earlier; adopting it")
    return cur
  end
  local since = unanswered[uid]
  if since and time.now() - since < _M.UNANSWERED_GRACE then
    pace.release(def, obj)
    return nil, _M.waiting("the create of the " .. def.kind .. " got no answer "
      .. floor(time.now() - since) .. " s ago; looking for it by its tag before creating "
      .. "again (for up to " .. _M.UNANSWERED_GRACE .. " s)", 10)
  end
  unanswered[uid] = nil
  cur, err = def.create(cloud, obj, deps)
  if not cur then
    pace.release(def, obj)
    if type(err) == "table" and err.status == 0 and not errors.not_sent(err) then
      unanswered[uid] = time.now()
    end
    return nil, _M.failed(err)
  end
  pace.wrote(def, cur.id)
  fault.point(def.kind, "created")
  ctx.event("Normal", "Created", "created " .. def.kind .. " " .. cur.id)
  return cur
end


local function reconcile(def, obj, ctx)
  local spec = obj.spec or {}
  local cloud, err, wait = _M.cloud_for(obj, def)
  if not cloud then
    if wait then
      return _M.waiting(wait)
    end
    return _M.failed(err)
  end
  local deps = {}
  if def.resolve then
    deps, wait = def.resolve(obj)
    if not deps then
      return _M.waiting("waiting: " .. wait)
    end
  end
  local cur, early, adopted = obtain(def, cloud, obj, ctx, deps)
  if not cur then
    return early
  end
  if def.recover and not adopted and not spec.import
      and (spec.managementPolicy or "managed") == "managed" then
    local now, res = def.recover(cloud, cur, obj, ctx, deps)
    if not now then
      res.status = res.status or { id = cur.id, resource = def.observe(cur, obj) }
      return res
    end
    cur = now
  end
  local status = { id = cur.id, projectID = cur.project_id or cur.tenant_id or cur.owner }
  if def.immutable and not adopted then
    local msg = def.immutable(obj, cur, deps)
    if msg then
      local fields = def.observe(cur, obj)
      status.resource = fields
      return terminal(msg, status)
    end
  end
  if def.update and (spec.managementPolicy or "managed") == "managed" then
    local changed
    local upd, uerr = def.update(cloud, cur, obj, deps)
    if not upd or uerr == true then
      pace.wrote(def, cur.id)
    end
    if not upd then
      return _M.failed(uerr, status)
    end
    cur, changed = upd, uerr
    if changed then
      fault.point(def.kind, "updated") -- OpenStack changed, nothing recorded yet
      ctx.event("Normal", "Updated", "updated " .. def.kind .. " " .. cur.id)
    end
  end
  local fields, state, message = def.observe(cur, obj)
  status.resource = fields
  if state == "available" then
    return { status = status, conditions = _M.available(message) }
  end
  if state == "error" then
    return { status = status, conditions = {
      cond("Available", "False", "ResourceError", message),
      cond("Progressing", "False", "ResourceError", message),
    }, requeue_after = 60 }
  end
  return { status = status, conditions = _M.progressing("Progressing", message),
           requeue_after = pace.interval(def, obj) }
end


-- What deleting obj does to its resource: "delete" or "detach" (spec.onDelete; unset, an
-- import detaches: what an object did not create is never deleted unless it says so), and
-- why, for the Event.
function _M.on_delete(obj)
  local spec = obj.spec or {}
  if (spec.managementPolicy or "managed") == "unmanaged" then
    return "detach", "unmanaged"
  end
  if spec.onDelete then
    return spec.onDelete, "onDelete: " .. spec.onDelete
  end
  if spec.import then
    return "detach", "imported, and onDelete is not delete"
  end
  return "delete", "onDelete: delete"
end


local function finalize(def, obj, ctx)
  local spec, st = obj.spec or {}, obj.status or {}
  pace.drop(def, obj)
  local action, why = _M.on_delete(obj)
  if action == "detach" then
    ctx.event("Normal", "Detached", "left " .. def.kind .. " " .. tostring(st.id)
      .. " in OpenStack (" .. why .. ")")
    return {}
  end
  local cloud, err, wait = _M.cloud_for(obj, def)
  if not cloud then
    if wait then
      -- No project any more (its namespace went first): nothing of ours can be left.
      return {}
    end
    return _M.failed(err)
  end
  local cur
  if st.id then
    cur, err = def.get(cloud, st.id, obj)
    if not cur and not openstack.is_not_found(err) then
      return _M.failed(err)
    end
  elseif not spec.import then
    cur, err = def.find_own(cloud, obj)
    if err then
      return _M.failed(err)
    end
  end
  if not cur then
    return {}
  end
  if def.deleting and def.deleting(cur) then
    return { conditions = _M.progressing("Deleting", def.kind .. " " .. cur.id
      .. " is being deleted"), requeue_after = 2 }
  end
  local ok, derr
  if def.users then
    derr = users.still_used(obj, def.users)
  end
  if not derr then
    ok, derr = def.delete(cloud, cur, obj)
    pace.wrote(def, cur.id)
  end
  if not ok then
    if openstack.is_not_found(derr) then
      return {}
    end
    if type(derr) == "table" and derr.kind == "conflict" then
      return { conditions = _M.progressing("Waiting", "cannot delete " .. def.kind .. " "
        .. cur.id .. " yet, it is still in use: " .. (derr.message or tostring(derr))),
        requeue_after = 5 }
    end
    return _M.failed(derr)
  end
  fault.point(def.kind, "deleted") -- gone (or going) in OpenStack, the finalizer still on
  ctx.event("Normal", "Deleted", "deleted " .. def.kind .. " " .. cur.id)
  if def.async_delete then
    return { conditions = _M.progressing("Deleting", def.kind .. " " .. cur.id
      .. " is being deleted"), requeue_after = 2 }
  end
  return {}
end


-- The key of o: "namespace/name", or "name" for a cluster-scoped object.
local function key_of(o)
  local ns = o.metadata.namespace
  return ns and ns .. "/" .. o.metadata.name or o.metadata.name
end


-- The keys of this kind's objects in dep's namespace (every one of them when dep, or this
-- kind, is cluster-scoped): a dependency or the namespace changed, so each may have
-- something to do now.
local function same_namespace(kind, dep_kind)
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


local function scope(kind)
  return _M.CLUSTER_KINDS[kind] and "Cluster" or nil
end


-- The plugin table for def (see the top of this file).
function _M.plugin(def)
  for _, f in ipairs({ "kind", "get", "find_own", "create", "delete", "observe" }) do
    if def[f] == nil then
      error("resource.plugin: '" .. f .. "' is required", 2)
    end
  end
  local watches = {
    { group = "", version = "v1", kind = "Namespace", map = same_namespace(def.kind, "Namespace") },
  }
  for _, k in ipairs(def.depends or {}) do
    watches[#watches + 1] = { group = _M.GROUP, version = _M.VERSION, kind = k, scope = scope(k),
                              map = same_namespace(def.kind, k) }
  end
  for _, u in ipairs(def.users or {}) do
    if u.kind ~= def.kind and not _M.has(def.depends, u.kind) then
      watches[#watches + 1] = users.watch(u)
    end
  end
  if def.max_creating then
    watches[#watches + 1] = pace.watch(def)
  end
  def.immutable = immutable.checker(def.kind, def.immutable)
  local function configure(ctx)
    if def.configure then
      def.configure(ctx.config or {})
    end
  end
  return {
    api = 1, group = _M.GROUP, version = _M.VERSION, kind = def.kind, scope = scope(def.kind),
    finalizer = _M.FINALIZER, concurrency = def.concurrency or 4, resync = def.resync or 300,
    limits = def.limits, watches = watches, consumes = def.consumes,
    config_schema = config_schema(def.config_schema),
    reconcile = function(obj, ctx)
      configure(ctx)
      local res, err = reconcile(def, obj, ctx)
      if not pace.building(res) then
        pace.release(def, obj)
      end
      if def.status and res and res.status and res.status.resource then
        def.status(res.status, obj)
      end
      if def.finish then
        res = def.finish(res, obj, ctx)
      end
      return res, err
    end,
    finalize = function(obj, ctx)
      configure(ctx)
      return finalize(def, obj, ctx)
    end,
  }
end


-- Does list hold value?
function _M.has(list, value)
  for _, v in ipairs(list or {}) do
    if v == value then
      return true
    end
  end
  return false
end


-- The subset of t with the given keys (nil values left out).
function _M.pick(t, keys)
  local out = {}
  for _, k in ipairs(keys) do
    if t[k] ~= nil then
      out[k] = t[k]
    end
  end
  return out
end


-- Fields of want (spec.resource) whose values differ from have's (OpenStack's), among keys.
function _M.diff(want, have, keys)
  local out, n = {}, 0
  for _, k in ipairs(keys) do
    local w = want[k]
    if w ~= nil and not _M.equal(w, have[k]) then
      out[k] = w
      n = n + 1
    end
  end
  return n > 0 and out or nil
end



-- Are a and b the same JSON value, at any depth (ks.k8s.equal: one home for it)?
_M.equal = k8s.equal

return _M
