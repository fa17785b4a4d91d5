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
-- Several fields of one manager come as lines "- .spec.a" under its "...using apps/v1:".
function _M.conflicts(message)
  local out, manager = {}, nil
  for line in (tostring(message) .. "\n"):gmatch("([^\n]*)\n") do
    local m, rest = line:match('conflicts? with "([^"]+)"[^:]*:%s*(.*)$')
    if m then
      manager = m
      if rest ~= "" then out[#out + 1] = { manager = m, field = rest } end
    elseif manager and line:match("^%- ") then
      out[#out + 1] = { manager = manager, field = line:sub(3) }
    end
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


-- Give an immutable object the digest of its declaration (kupenstack.io/template-hash),
-- which tells at the next apply whether it changed.
local function prepare(obj)
  if IMMUTABLE[obj.kind] then
    obj.metadata.annotations = obj.metadata.annotations or {}
    obj.metadata.annotations[_M.HASH] = nil
    obj.metadata.annotations[_M.HASH] = util.digest(obj)
  end
end


-- What obj needs, live being the object (false: absent): "keep", "recreate" or "apply",
-- and for an update the first field that differs.
-- ctx.changed[key]: the declaration differs from the one applied last, so it is applied
-- even when every field it declares is live (a field it no longer declares, as an
-- annotation taken out, is removed by the apply: it is the release's field manager's).
local function decide(obj, live, ctx)
  if live and IMMUTABLE[obj.kind] then
    local have = ((live.metadata.annotations or {})[_M.HASH])
    if have == obj.metadata.annotations[_M.HASH] then return "keep" end
    return "recreate"
  end
  local where = live and util.differs(obj, live)
  if live and not where then
    if not (ctx and ctx.changed and ctx.changed[util.key(obj)]) then return "keep" end
    where = "a field no longer declared"
  end
  return "apply", where
end


-- What follows an apply of obj (answered o or aerr): a conflict with another manager
-- forced with an Event naming it and the field; someone else's change reverted without a
-- conflict reported too; an immutable field re-created. The live object, or nil, err.
local function settle(obj, live, where, o, aerr, ctx)
  if not o and type(aerr) == "table" and aerr.code == 409 then
    for _, c in ipairs(_M.conflicts(aerr.message)) do
      if ctx.event then
        ctx.event("Warning", "DriftReverted", util.name(obj) .. " " .. c.field ..
          " was changed by " .. c.manager .. ": the release's value is restored")
      end
    end
    ctx.writes = ctx.writes + 1
    o, aerr = kube.apply(obj, { field_manager = _M.MANAGER, force = true })
  elseif o and live and ctx.drift and ctx.drift[util.key(obj)] and ctx.event then
    ctx.event("Warning", "DriftReverted", util.name(obj) .. " " .. where .. " was changed" ..
      other_manager(live, where) .. ": the release's value is restored")
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


-- Bring obj to its declaration. ctx: { writes = n, plan = {} | nil (dry run when set),
-- event = function(type, reason, message) | nil, drift = { [key] = true } (the
-- declarations that are the ones applied last: a difference is someone else's change),
-- changed = { [key] = true } (the declarations that differ from the ones applied last) }.
-- Returns the live object after (the declared one in a dry run), or nil, err.
function _M.put(obj, ctx)
  prepare(obj)
  local live, err = _M.live(obj)
  if live == nil then return nil, err end
  local what, where = decide(obj, live, ctx)
  if what == "keep" then return live end
  if ctx.plan then
    plan(ctx, what == "recreate" and "recreate" or (live and "update" or "create"), obj,
         where and { where } or (what == "recreate" and { "spec" }) or nil)
    return obj
  end
  if what == "recreate" then return recreate(obj, live, ctx) end
  ctx.writes = ctx.writes + 1
  local o, aerr = kube.apply(obj, { field_manager = _M.MANAGER })
  return settle(obj, live, where, o, aerr, ctx)
end


local function batch_failed(r)
  return r and r.object == nil and r.code ~= 404
end


-- put() for each of objs, with up to ctx.concurrency (default 4) GETs, then applies, in
-- flight at once (kube.batch); one at a time where that is not offered. Returns the live
-- objects in the order of objs, or nil, err.
function _M.put_many(objs, ctx)
  local conc = ctx.concurrency or 4
  local fetched = #objs > 1 and conc > 1 and kube.batch and
    kube.batch("fetch", objs, { concurrency = conc })
  if not fetched then
    local out = {}
    for i, obj in ipairs(objs) do
      local live, err = _M.put(obj, ctx)
      if not live then return nil, err end
      out[i] = live
    end
    return out
  end
  local out, todo, lives, wheres = {}, {}, {}, {}
  for i, obj in ipairs(objs) do
    prepare(obj)
    local r = fetched[i]
    if batch_failed(r) then
      return nil, "could not read " .. util.name(obj) .. ": " ..
        util.truncate(tostring(r.reason) .. ": " .. tostring(r.message))
    end
    local live = r.object or false
    local what, where = decide(obj, live, ctx)
    if what == "keep" then
      out[i] = live
    elseif ctx.plan then
      plan(ctx, what == "recreate" and "recreate" or (live and "update" or "create"), obj,
           where and { where } or (what == "recreate" and { "spec" }) or nil)
      out[i] = obj
    elseif what == "recreate" then
      local o, err = recreate(obj, live, ctx)
      if not o then return nil, err end
      out[i] = o
    else
      todo[#todo + 1] = i
      lives[i], wheres[i] = live, where
    end
  end
  if #todo == 0 then return out end
  local batch = {}
  for n, i in ipairs(todo) do batch[n] = objs[i] end
  ctx.writes = ctx.writes + #batch
  local applied, berr = kube.batch("apply", batch, { concurrency = conc,
                                                     field_manager = _M.MANAGER })
  if not applied then return nil, "could not apply: " .. util.truncate(tostring(berr)) end
  for n, i in ipairs(todo) do
    local r = applied[n]
    local err = r.object == nil and { code = r.code, reason = r.reason, message = r.message }
    if err then
      setmetatable(err, { __tostring = function(e) return e.reason .. ": " .. e.message end })
    end
    local o, serr = settle(objs[i], lives[i], wheres[i], r.object, err, ctx)
    if not o then return nil, serr end
    out[i] = o
  end
  return out
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
