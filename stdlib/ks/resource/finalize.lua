-- ks/resource/finalize.lua: what ks.resource does when an object is deleted: detach
-- (unmanaged, onDelete: detach, or imported without onDelete: delete), or delete its
-- resource, waiting while something still uses it (def.users, or the service's conflict)
-- and, for def.async_delete, until it is gone.
--
--   local res = finalize.finalize(def, obj, ctx)  -- {} once the finalizer may go
local fault = require "ks.core.fault"
local openstack = require "ks.openstack"
local clouds = require "ks.resource.cloud"
local pace = require "ks.resource.pace"
local result = require "ks.resource.result"
local users = require "ks.resource.users"

local type = type
local tostring = tostring


local _M = {}


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


local function deleting(def, cur)
  return { conditions = result.progressing("Deleting", def.kind .. " " .. cur.id
    .. " is being deleted"), requeue_after = 2 }
end


-- obj's resource: by status.id, else (no import) by our tag; nil when there is none.
local function current(def, cloud, obj)
  local spec, st = obj.spec or {}, obj.status or {}
  local cur, err
  if st.id then
    cur, err = def.get(cloud, st.id, obj)
    if cur or openstack.is_not_found(err) then
      err = nil
    end
  elseif not spec.import then
    cur, err = def.find_own(cloud, obj)
  end
  return cur, err
end


-- Delete cur unless something uses it: the result.
local function delete(def, cloud, cur, obj, ctx)
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
      return { conditions = result.progressing("Waiting", "cannot delete " .. def.kind .. " "
        .. cur.id .. " yet, it is still in use: " .. (derr.message or tostring(derr))),
        requeue_after = 5 }
    end
    return result.failed(derr)
  end
  fault.point(def.kind, "deleted") -- gone (or going) in OpenStack, the finalizer still on
  ctx.event("Normal", "Deleted", "deleted " .. def.kind .. " " .. cur.id)
  if def.async_delete then
    return deleting(def, cur)
  end
  return {}
end


-- The finalize's result for obj.
function _M.finalize(def, obj, ctx)
  pace.drop(def, obj)
  local action, why = _M.on_delete(obj)
  if action == "detach" then
    ctx.event("Normal", "Detached", "left " .. def.kind .. " " .. tostring((obj.status or {}).id)
      .. " in OpenStack (" .. why .. ")")
    return {}
  end
  local cloud, err, wait = clouds.cloud_for(obj, def)
  if not cloud then
    if wait then
      -- No project any more (its namespace went first): nothing of ours can be left.
      return {}
    end
    return result.failed(err)
  end
  local cur
  cur, err = current(def, cloud, obj)
  if err then
    return result.failed(err)
  end
  if not cur then
    return {}
  end
  if def.deleting and def.deleting(cur) then
    return deleting(def, cur)
  end
  return delete(def, cloud, cur, obj, ctx)
end


return _M
