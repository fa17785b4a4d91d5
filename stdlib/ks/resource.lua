-- ks/resource.lua: what every OpenStack resource kind does the same way, so that a kind's
-- plugin only says how to get, find, create, update, observe and delete its resource.
--
--   return resource.plugin {
--     kind = "Network", service = "network",
--     depends = { "Subnet" },           -- kinds whose changes re-reconcile ours (refs)
--     get = function(cloud, id) end,    -- the resource, or nil and an error (404: not_found)
--     find_own = function(cloud, obj) end, -- the one we created for obj (by the UID tag), or nil
--     find = function(cloud, filter, obj) end, -- import by filter: a list
--     resolve = function(obj) end,      -- the references: deps, or nil and what is awaited
--     create = function(cloud, obj, deps) end,
--     update = function(cloud, current, obj, deps) end, -- current', changed
--     immutable = function(obj, current, deps) end,     -- a message when spec changed one
--     delete = function(cloud, current, obj) end,
--     observe = function(current, obj) end, -- fields, "available"|"progressing"|"error", msg
--     list = function(cloud) end,       -- optional: every resource of the project, for polls
--     max_creating = 8,                 -- optional: see below (or function(ctx) giving it)
--   }
--
-- The flow: the cloud (the namespace's project, or spec.cloudCredentialsRef); the
-- references, waited for with a condition naming them; the resource by status.id, by
-- spec.import, by our UID tag (a create whose answer was lost), or created; updated in
-- place; observed into status. Finalize deletes it (unless unmanaged or onDelete:
-- detach), waits while something still uses it, and until it is gone.
--
-- A progressing resource is looked at again every def.poll seconds (default 3). With
-- def.list, when several objects of the namespace are polled at once (at least 2, and at
-- least a tenth of them), their polls share one list of the project (ks.poll). With
-- def.max_creating, at most that many objects of a namespace are being created at once
-- (from the create until the resource is no longer on its way, as a script creating one
-- resource after another with that many threads would): the others wait, Progressing
-- with reason Waiting, for a free slot (ks.slots); 0: no limit.
local kube = require "ks.core.kube"
local config = require "ks.core.config"
local fault = require "ks.core.fault"
local time = require "ks.core.time"
local openstack = require "ks.openstack"
local base64 = require "ks.base64"
local poll = require "ks.poll"
local slots = require "ks.slots"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local getmetatable = getmetatable
local concat = table.concat
local random = math.random


local _M = {}

_M.GROUP = "kupenstack.io"
_M.VERSION = "v1alpha1"
_M.FINALIZER = "kupenstack.io/openstack"
_M.PROJECT_ANNOTATION = "kupenstack.io/project-id"
_M.UID_TAG_PREFIX = "kupenstack-uid-"
_M.NAMESPACES = { group = "", version = "v1", kind = "Namespace" }
local SECRETS = { group = "", version = "v1", kind = "Secret" }


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


-- Clouds, cached per state: the operator's, scoped ones per project, and per Secret.
local operator_cloud
local scoped = {}
local from_secret = {}


function _M.operator()
  if operator_cloud then
    return operator_cloud
  end
  local text = config.get("clouds_yaml")
  if not text then
    return nil, "the operator has no clouds.yaml: start it with --os-config FILE (or "
      .. "OS_CLIENT_CONFIG_FILE) and --os-cloud NAME"
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
    local cur, err = def.get(cloud, imp.id)
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


-- Was obj progressing at its last reconcile, with nothing changed in its spec since?
local function polling(obj)
  local gen = obj.metadata.generation
  for _, c in ipairs((obj.status and obj.status.conditions) or {}) do
    if c.type == "Progressing" then
      return c.status == "True" and c.reason == "Progressing" and c.observedGeneration == gen
    end
  end
  return false
end


-- How many objects of kind in ns are polling, and how many there are, counted at most
-- once a second: { at =, polling =, all = } by kind and namespace.
local counts = {}


local function count_polling(kind, ns)
  local k, now = kind .. "\0" .. ns, time.monotonic()
  local c = counts[k]
  if not c or now - c.at > 1 then
    local all = kube.list(_M.res(kind), { namespace = ns })
    c = { at = now, polling = 0, all = #all }
    for _, o in ipairs(all) do
      if o.status and o.status.id and polling(o) then
        c.polling = c.polling + 1
      end
    end
    counts[k] = c
  end
  return c.polling, c.all
end


-- obj's resource from a list shared with the other polls of its namespace (ks.poll), or
-- nil: get it alone (def has no list, obj is not polling, too few are, or none to trust).
local function polled(def, cloud, obj)
  if not def.list or not polling(obj) then
    return nil
  end
  local n, all = count_polling(def.kind, obj.metadata.namespace)
  if n < 2 or n * 10 < all then
    return nil
  end
  return poll.get(def.kind, cloud, obj.status.id, def.list, 1)
end


local function is_available(o)
  for _, c in ipairs((o.status and o.status.conditions) or {}) do
    if c.type == "Available" then
      return c.status == "True"
    end
  end
  return false
end


-- The slots of def.max_creating: by kind and namespace.
local function slot_key(def, obj)
  return def.kind .. "\0" .. obj.metadata.namespace
end


-- Take a slot for obj's create; nil, or what it waits for (no slot free) and when to try
-- again: after poll seconds and a random part of half a second per waiter, so that with
-- many waiters one comes about every quarter of a second, however many there are.
local function take_slot(def, obj, ctx)
  local limit = def.max_creating
  if type(limit) == "function" then
    limit = limit(ctx)
  end
  if not limit or limit <= 0 then
    return nil
  end
  local ns = obj.metadata.namespace
  local function still(name)
    local o = kube.get(_M.res(def.kind), ns, name)
    return o ~= nil and not o.metadata.deletionTimestamp and not is_available(o)
  end
  local key = slot_key(def, obj)
  if slots.take(key, obj.metadata.name, limit, still) then
    return nil
  end
  return "at most " .. limit .. " " .. def.kind .. " objects of a namespace are created at "
    .. "once; waiting for one of them to be done",
    (def.poll or 3) + random() * 0.5 * slots.waiting(key)
end


-- Did the reconcile leave obj's resource on its way (and so still holding its slot)?
local function building(res)
  if not (res and res.status and res.status.id) then
    return false
  end
  for _, c in ipairs(res.conditions or {}) do
    if c.type == "Progressing" then
      return c.status == "True" and c.reason == "Progressing"
    end
  end
  return false
end


-- The resource for obj: by status.id, import, our tag, or a new one. Returns current,
-- result (an early result to return instead), adopted.
local function obtain(def, cloud, obj, ctx, deps)
  local spec, st = obj.spec or {}, obj.status or {}
  local policy = spec.managementPolicy or "managed"
  local cur, err
  if st.id then
    cur = polled(def, cloud, obj)
    if not cur then
      cur, err = def.get(cloud, st.id)
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
    ctx.event("Warning", "Drift", def.kind .. " " .. st.id
      .. " was deleted outside KupenStack; creating it again")
  end
  if spec.import then
    local wait
    cur, err, wait = find_unique(def, cloud, obj, spec.import)
    if wait then
      return nil, _M.waiting(wait, 30)
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
  local wait, again = take_slot(def, obj, ctx)
  if wait then
    return nil, _M.waiting(wait, again)
  end
  cur, err = def.find_own(cloud, obj)
  if err then
    slots.release(slot_key(def, obj), obj.metadata.name)
    return nil, _M.failed(err)
  end
  if cur then
    ctx.event("Normal", "Adopted", "found " .. def.kind .. " " .. cur.id
      .. " created for this object earlier; adopting it")
    return cur
  end
  cur, err = def.create(cloud, obj, deps)
  if not cur then
    slots.release(slot_key(def, obj), obj.metadata.name)
    return nil, _M.failed(err)
  end
  poll.wrote(def.kind, cur.id)
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
      poll.wrote(def.kind, cur.id)
    end
    if not upd then
      return _M.failed(uerr, status)
    end
    cur, changed = upd, uerr
    if changed then
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
           requeue_after = def.poll or 3 }
end


local function finalize(def, obj, ctx)
  local spec, st = obj.spec or {}, obj.status or {}
  slots.drop(slot_key(def, obj), obj.metadata.name)
  if (spec.managementPolicy or "managed") == "unmanaged" or spec.onDelete == "detach" then
    ctx.event("Normal", "Detached", "left " .. def.kind .. " " .. tostring(st.id)
      .. " in OpenStack (" .. (spec.onDelete == "detach" and "onDelete: detach" or "unmanaged") .. ")")
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
    cur, err = def.get(cloud, st.id)
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
  local ok, derr = def.delete(cloud, cur, obj)
  poll.wrote(def.kind, cur.id)
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
  ctx.event("Normal", "Deleted", "deleted " .. def.kind .. " " .. cur.id)
  if def.async_delete then
    return { conditions = _M.progressing("Deleting", def.kind .. " " .. cur.id
      .. " is being deleted"), requeue_after = 2 }
  end
  return {}
end


-- The keys of this kind's objects in obj's namespace: a dependency or the namespace
-- changed, so each may have something to do now.
local function same_namespace(kind)
  return function(dep)
    local ns = dep.metadata.namespace or dep.metadata.name
    local keys = {}
    for i, o in ipairs(kube.list(_M.res(kind), { namespace = ns })) do
      keys[i] = ns .. "/" .. o.metadata.name
    end
    return keys
  end
end


-- The plugin table for def (see the top of this file).
function _M.plugin(def)
  for _, f in ipairs({ "kind", "get", "find_own", "create", "delete", "observe" }) do
    if def[f] == nil then
      error("resource.plugin: '" .. f .. "' is required", 2)
    end
  end
  local watches = {
    { group = "", version = "v1", kind = "Namespace", map = same_namespace(def.kind) },
  }
  for _, k in ipairs(def.depends or {}) do
    watches[#watches + 1] = { group = _M.GROUP, version = _M.VERSION, kind = k,
                              map = same_namespace(def.kind) }
  end
  return {
    api = 1, group = _M.GROUP, version = _M.VERSION, kind = def.kind,
    finalizer = _M.FINALIZER, concurrency = def.concurrency or 4, resync = def.resync or 300,
    limits = def.limits, watches = watches,
    config_schema = def.config_schema,
    reconcile = function(obj, ctx)
      local res, err = reconcile(def, obj, ctx)
      if not building(res) then
        slots.release(slot_key(def, obj), obj.metadata.name)
      end
      return res, err
    end,
    finalize = function(obj, ctx) return finalize(def, obj, ctx) end,
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


function _M.equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  for k, v in pairs(a) do
    if not _M.equal(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end


return _M
