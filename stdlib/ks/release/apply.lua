-- ks/release/apply.lua: one object brought to what the release declares, with as few
-- writes as that takes: none when the live object already holds every declared field (a
-- re-apply of the same inputs writes nothing); otherwise server-side apply under the
-- release's own field manager. A conflict with another manager (someone's `kubectl edit`)
-- is forced, and an Event names the manager and the field: the declared state wins. An
-- immutable object (a Job; anything the API refuses to update because a field is
-- immutable) whose declaration changed is deleted with foreground propagation and created
-- anew; an unchanged one is left alone. In a dry run nothing is written and the plan says
-- what would be.
local kube = require "ks.core.kube"
local time = require "ks.core.time"
local util = require "ks.release.util"

local ipairs = ipairs
local tostring = tostring
local type = type


local _M = {}

_M.MANAGER = "kupenstack-release"
_M.HASH = "kupenstack.io/template-hash"
-- Seconds to wait for an object deleted for re-creation to be gone (within one call).
_M.GONE_WAIT = 60

-- Kinds whose spec the API refuses to change: re-created when their declaration changes.
local IMMUTABLE = { Job = true }


local function is_404(err)
  return type(err) == "table" and err.code == 404
end


-- The live object, false when absent, or nil, err.
function _M.live(obj)
  local o, err = kube.fetch(obj, obj.metadata.namespace, obj.metadata.name)
  if o then return o end
  if err == nil or is_404(err) then return false end
  return nil, "could not read " .. util.name(obj) .. ": " .. util.truncate(tostring(err))
end


-- The other managers and fields of a 409 apply conflict, as the API server words it:
-- 'conflict with "kubectl-edit" using apps/v1: .spec.replicas'.
function _M.conflicts(message)
  local out = {}
  for manager, field in tostring(message):gmatch('conflicts? with "([^"]+)"[^:]*: ([^\n]+)') do
    out[#out + 1] = { manager = manager, field = field }
  end
  return out
end


-- The manager (other than ours) that owns path (".spec.replicas") in live's managedFields,
-- as " by NAME", else the one that last updated live, else "".
local function other_manager(live, path)
  local best, at
  for _, m in ipairs(((live or {}).metadata or {}).managedFields or {}) do
    if m.manager ~= _M.MANAGER then
      local f = m.fieldsV1
      for part in path:gmatch("[^.%[]+") do
        f = type(f) == "table" and f["f:" .. part] or nil
      end
      if f ~= nil then return " by " .. m.manager end
      if m.operation == "Update" and (not at or (m.time or "") > at) then
        best, at = m.manager, m.time or ""
      end
    end
  end
  return best and (" (the object was last updated by " .. best .. ")") or ""
end


local function wait_gone(obj, uid)
  local deadline = time.monotonic() + _M.GONE_WAIT
  while true do
    local o, err = _M.live(obj)
    if o == nil then return nil, err end
    if not o or o.metadata.uid ~= uid then return true end
    if time.monotonic() > deadline then
      return nil, "waiting for " .. util.name(obj) .. " to be deleted"
    end
    time.sleep(0.5)
  end
end


-- Delete live (foreground: its pods first) and create obj in its place.
local function recreate(obj, live, ctx)
  ctx.writes = ctx.writes + 1
  local ok, err = kube.delete(obj, obj.metadata.namespace, obj.metadata.name,
                              { uid = live.metadata.uid, propagation = "Foreground" })
  if not ok and not is_404(err) then
    return nil, "could not delete " .. util.name(obj) .. " to re-create it: " ..
      util.truncate(tostring(err))
  end
  local gone, err2 = wait_gone(obj, live.metadata.uid)
  if not gone then return nil, err2 end
  ctx.writes = ctx.writes + 1
  local o, err3 = kube.apply(obj, { field_manager = _M.MANAGER, force = true })
  if not o then
    return nil, "could not create " .. util.name(obj) .. ": " .. util.truncate(tostring(err3))
  end
  return o
end


local function plan(ctx, action, obj, fields)
  ctx.plan[#ctx.plan + 1] = { action = action, object = util.name(obj), fields = fields }
end


-- Bring obj to its declaration. ctx: { writes = n, plan = {} | nil (dry run when set),
-- event = function(type, reason, message) | nil, drift = bool (the declaration is the
-- one applied last: a difference is someone else's change) }. Returns the live object
-- after (the declared one in a dry run), or nil, err.
function _M.put(obj, ctx)
  if IMMUTABLE[obj.kind] then
    obj.metadata.annotations = obj.metadata.annotations or {}
    obj.metadata.annotations[_M.HASH] = nil
    obj.metadata.annotations[_M.HASH] = util.digest(obj)
  end
  local live, err = _M.live(obj)
  if live == nil then return nil, err end
  if live and IMMUTABLE[obj.kind] then
    local have = ((live.metadata.annotations or {})[_M.HASH])
    if have == obj.metadata.annotations[_M.HASH] then return live end
    if ctx.plan then plan(ctx, "recreate", obj, { "spec" }); return obj end
    return recreate(obj, live, ctx)
  end
  local where = live and util.differs(obj, live)
  if live and not where then return live end
  if ctx.plan then
    plan(ctx, live and "update" or "create", obj, where and { where } or nil)
    return obj
  end
  ctx.writes = ctx.writes + 1
  local o, aerr = kube.apply(obj, { field_manager = _M.MANAGER })
  if not o and type(aerr) == "table" and aerr.code == 409 then
    local who = _M.conflicts(aerr.message)
    for _, c in ipairs(who) do
      if ctx.event then
        ctx.event("Warning", "DriftReverted", util.name(obj) .. " " .. c.field ..
          " was changed by " .. c.manager .. ": the release's value is restored")
      end
    end
    ctx.writes = ctx.writes + 1
    o, aerr = kube.apply(obj, { field_manager = _M.MANAGER, force = true })
  elseif o and live and ctx.drift and ctx.event then
    ctx.event("Warning", "DriftReverted", util.name(obj) .. " " .. where .. " was changed" ..
      other_manager(live, where) ..
      ": the release's value is restored")
  end
  if not o and type(aerr) == "table" and aerr.code == 422 and live and
    tostring(aerr.message):find("immutable", 1, true) then
    return recreate(obj, live, ctx)
  end
  if not o then
    return nil, "could not apply " .. util.name(obj) .. ": " .. util.truncate(tostring(aerr))
  end
  return o
end


-- Create obj unless an object of its name exists (pre-install hooks: never overwritten).
-- Returns the live object and whether this call created it, or nil, err.
function _M.create_absent(obj, ctx)
  local live, err = _M.live(obj)
  if live == nil then return nil, err end
  if live then return live, false end
  if ctx.plan then plan(ctx, "create", obj); return obj, false end
  ctx.writes = ctx.writes + 1
  local o, cerr = kube.create(obj)
  if not o and not (type(cerr) == "table" and cerr.code == 409) then
    return nil, "could not create " .. util.name(obj) .. ": " .. util.truncate(tostring(cerr))
  end
  if o then return o, true end
  return _M.live(obj), false
end


-- Delete the object of entry (an inventory entry: apiVersion, kind, name, uid) in ns,
-- only if it is still the one applied (its UID); true when gone or absent.
function _M.remove(entry, ns, ctx, propagation)
  local res = { apiVersion = entry.apiVersion, kind = entry.kind }
  if ctx.plan then
    plan(ctx, "delete", { kind = entry.kind, metadata = { name = entry.name } })
    return true
  end
  ctx.writes = ctx.writes + 1
  local ok, err = kube.delete(res, ns, entry.name,
                              { uid = entry.uid, propagation = propagation or "Background" })
  if ok or is_404(err) or (type(err) == "table" and err.code == 409) then
    return true -- 409: the UID differs, the object is someone else's now
  end
  return nil, "could not delete " .. entry.kind .. "/" .. entry.name .. ": " ..
    util.truncate(tostring(err))
end


return _M
