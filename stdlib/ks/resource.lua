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
--
-- The parts: ks.resource.adopt (status.id, import, our tag, or a create), .converge
-- (recover, immutable, update, observe into status), .finalize (detach or delete), .result
-- (conditions and errors as results), .compare (diff, pick, has, equal), .refs (the kinds,
-- references between them, the watches), .cloud, .pace, .immutable, .users. This file
-- wires them into the plugin table and keeps the names plugins use.
local clouds = require "ks.resource.cloud"
local pace = require "ks.resource.pace"
local immutable = require "ks.resource.immutable"
local users = require "ks.resource.users"
local result = require "ks.resource.result"
local compare = require "ks.resource.compare"
local refs = require "ks.resource.refs"
local adopt = require "ks.resource.adopt"
local converge = require "ks.resource.converge"
local finalize = require "ks.resource.finalize"

local pairs = pairs
local ipairs = ipairs


local _M = {}

_M.FINALIZER = "kupenstack.io/openstack"
-- What plugins use, from the parts.
_M.GROUP, _M.VERSION, _M.CLUSTER_KINDS = refs.GROUP, refs.VERSION, refs.CLUSTER_KINDS
_M.res, _M.ref_id, _M.resolver = refs.res, refs.ref_id, refs.resolver
_M.PROJECT_ANNOTATION, _M.NAMESPACES = clouds.PROJECT_ANNOTATION, clouds.NAMESPACES
_M.operator, _M.project_of, _M.cloud_for = clouds.operator, clouds.project_of, clouds.cloud_for
_M.is_available = refs.is_available
_M.UID_TAG_PREFIX, _M.UNANSWERED_GRACE, _M.uid_tag =
  adopt.UID_TAG_PREFIX, adopt.UNANSWERED_GRACE, adopt.uid_tag
_M.available, _M.progressing, _M.waiting = result.available, result.progressing, result.waiting
_M.describe, _M.failed, _M.terminal = result.describe, result.failed, result.terminal
_M.on_delete = finalize.on_delete
_M.equal, _M.has, _M.pick, _M.diff = compare.equal, compare.has, compare.pick, compare.diff


-- The OpenStack name for obj: spec.resource.name, else metadata.name.
function _M.name(obj)
  local r = obj.spec and obj.spec.resource
  return (r and r.name) or obj.metadata.name
end


local function config_schema(own)
  local schema = {}
  for k, v in pairs(adopt.CONFIG) do
    schema[k] = v
  end
  for k, v in pairs(own or {}) do
    schema[k] = v
  end
  return schema
end


-- The cloud, the references, the resource, then what to do with it.
local function reconcile(def, obj, ctx)
  local cloud, err, wait = clouds.cloud_for(obj, def)
  if not cloud then
    if wait then
      return result.waiting(wait)
    end
    return result.failed(err)
  end
  local deps = {}
  if def.resolve then
    deps, wait = def.resolve(obj)
    if not deps then
      return result.waiting("waiting: " .. wait)
    end
  end
  local cur, early, adopted = adopt.obtain(def, cloud, obj, ctx, deps)
  if not cur then
    return early
  end
  return converge.converge(def, cloud, cur, obj, ctx, deps, adopted)
end


local function watches(def)
  local list = refs.watches(def.kind, def.depends)
  for _, u in ipairs(def.users or {}) do
    if u.kind ~= def.kind and not compare.has(def.depends, u.kind) then
      list[#list + 1] = users.watch(u)
    end
  end
  if def.max_creating then
    list[#list + 1] = pace.watch(def)
  end
  return list
end


-- The plugin table for def (see the top of this file).
function _M.plugin(def)
  for _, f in ipairs({ "kind", "get", "find_own", "create", "delete", "observe" }) do
    if def[f] == nil then
      error("resource.plugin: '" .. f .. "' is required", 2)
    end
  end
  local list = watches(def)
  def.immutable = immutable.checker(def.kind, def.immutable)
  local function configure(ctx)
    if def.configure then
      def.configure(ctx.config or {})
    end
  end
  return {
    api = 1, group = _M.GROUP, version = _M.VERSION, kind = def.kind, scope = refs.scope(def.kind),
    finalizer = _M.FINALIZER, concurrency = def.concurrency or 4, resync = def.resync or 300,
    limits = def.limits, watches = list, consumes = def.consumes,
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
      return finalize.finalize(def, obj, ctx)
    end,
  }
end


return _M
