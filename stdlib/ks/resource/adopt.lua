-- ks/resource/adopt.lua: how ks.resource comes by the resource of an object: by status.id,
-- by spec.import (an id, or a filter that must match exactly one), by our UID tag (a
-- create whose answer was lost), or by creating it.
--
--   local cur, early, adopted = adopt.obtain(def, cloud, obj, ctx, deps)
--   -- cur: the resource; or nil and early, the result to return instead; adopted: true
--   -- when it came by spec.import (it is observed, never checked against the spec)
--
-- A create that got no answer (a timeout after the request went out) may still be made by
-- the service: for UNANSWERED_GRACE seconds the object only looks for it (def.find_own)
-- before creating again. Kept in this Lua state: a restarted host does not remember it.
local fault = require "ks.core.fault"
local time = require "ks.core.time"
local openstack = require "ks.openstack"
local errors = require "ks.openstack.errors"
local pace = require "ks.resource.pace"
local result = require "ks.resource.result"

local type = type
local ipairs = ipairs
local concat = table.concat
local floor = math.floor


local _M = {}

_M.UID_TAG_PREFIX = "kupenstack-uid-"
_M.UNANSWERED_GRACE = 180
-- Seconds between looks while spec.import matches none, unless the setting import_retry
-- says (see CONFIG).
_M.IMPORT_RETRY = 30
-- The settings every kind has (NAME.config.yaml), beside the plugin's own.
_M.CONFIG = {
  import_retry = { type = "number", default = _M.IMPORT_RETRY,
    description = "seconds between looks for the resource while spec.import matches none" },
}
local unanswered = {} -- object UID -> time.now() of a create that got no answer


-- The tag that marks a resource as the one created for obj.
function _M.uid_tag(obj)
  return _M.UID_TAG_PREFIX .. obj.metadata.uid
end


-- The resource spec.import (imp) names: it, or nil and an error, or nil, nil and what
-- to wait for (none matches yet).
function _M.find_unique(def, cloud, obj, imp)
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


-- status.id's resource: cur; or nil and an early result; or nothing (create it again).
local function by_id(def, cloud, obj, ctx, deps)
  local spec, id = obj.spec or {}, obj.status.id
  local cur = pace.polled(def, cloud, obj)
  local err
  if not cur then
    cur, err = def.get(cloud, id, obj)
  end
  if not cur and not openstack.is_not_found(err) then
    return nil, result.failed(err)
  end
  if cur then
    return cur
  end
  if (spec.managementPolicy or "managed") == "unmanaged" or spec.import then
    return nil, { status = { id = id }, conditions = result.progressing("NotFound",
      def.kind .. " " .. id .. " no longer exists in OpenStack"), requeue_after = 60 }
  end
  if def.gone then
    local own, early = def.gone(cloud, obj, ctx, deps)
    if own or early then
      return own, early
    end
  end
  ctx.event("Warning", "Drift", def.kind .. " " .. id
    .. " was deleted outside KupenStack; creating it again")
end


-- The resource spec.import names, adopted: cur, nil, true; or nil and an early result.
local function import(def, cloud, obj, ctx)
  local cur, err, wait = _M.find_unique(def, cloud, obj, obj.spec.import)
  if wait then
    return nil, result.waiting(wait, (ctx.config or {}).import_retry or _M.IMPORT_RETRY)
  end
  if not cur then
    if type(err) == "table" and err.kind == "invalid" and not err.status then
      return nil, result.terminal(err.message)
    end
    return nil, result.failed(err)
  end
  if (obj.status or {}).id ~= cur.id then
    ctx.event("Normal", "Adopted", "adopted " .. def.kind .. " " .. cur.id)
  end
  return cur, nil, true
end


-- Ours, found by our tag, or created (in turn, when def paces its creates).
local function own_or_create(def, cloud, obj, ctx, deps)
  local wait, again = pace.take(def, obj, ctx)
  if wait then
    return nil, result.waiting(wait, again)
  end
  local cur, err = def.find_own(cloud, obj)
  if err then
    pace.release(def, obj)
    return nil, result.failed(err)
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
    return nil, result.waiting("the create of the " .. def.kind .. " got no answer "
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
    return nil, result.failed(err)
  end
  pace.wrote(def, cur.id)
  fault.point(def.kind, "created")
  ctx.event("Normal", "Created", "created " .. def.kind .. " " .. cur.id)
  return cur
end


-- The resource for obj: by status.id, import, our tag, or a new one. Returns current,
-- result (an early result to return instead), adopted.
function _M.obtain(def, cloud, obj, ctx, deps)
  local spec = obj.spec or {}
  if obj.status and obj.status.id then
    local cur, early = by_id(def, cloud, obj, ctx, deps)
    if cur or early then
      return cur, early
    end
  end
  if spec.import then
    return import(def, cloud, obj, ctx)
  end
  if (spec.managementPolicy or "managed") == "unmanaged" then
    return nil, result.terminal("managementPolicy unmanaged observes an existing resource: "
      .. "set spec.import")
  end
  return own_or_create(def, cloud, obj, ctx, deps)
end


return _M
