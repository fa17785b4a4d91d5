-- ks/release/inventory.lua: what a release applied, kept in its state (ks.release.state):
-- one entry per object (apiVersion, kind, name, UID, the digest of its declaration), listed
-- before the object is applied so that an apply cut short leaves nothing unlisted; and the
-- prune of what a new render no longer declares, newest first.
local apply = require "ks.release.apply"
local util = require "ks.release.util"

local ipairs = ipairs


local _M = {}


-- The inventory entry of obj as applied (live: the object the API server answered).
function _M.entry(obj, live)
  return { apiVersion = obj.apiVersion, kind = obj.kind, name = obj.metadata.name,
           uid = live and live.metadata and live.metadata.uid or nil,
           d = util.digest(obj) }
end


-- "Kind/name" -> its index in the inventory inv.
function _M.index(inv)
  local by = {}
  for i, e in ipairs(inv) do by[e.kind .. "/" .. e.name] = i end
  return by
end


-- Record in the inventory what ctx applied: each listed object's UID and the digest of
-- its declaration (what tells the next apply whether the declaration changed).
function _M.record(ctx, st)
  local by = _M.index(st.inventory)
  for _, a in ipairs(ctx.applied) do
    local i = by[a.obj.kind .. "/" .. a.obj.metadata.name]
    local e = _M.entry(a.obj, a.live)
    e.hook = a.hook or nil
    if i then st.inventory[i] = e end
  end
end


-- The UID of the object of entry e when it is this release's (its label and annotation
-- say so): an entry listed before its object was applied (the host stopped in between)
-- has none of its own. nil when there is no such object, or nil, err.
local function uid_of_own(e, spec)
  local live, err = apply.live({ apiVersion = e.apiVersion, kind = e.kind,
                                 metadata = { namespace = spec.namespace, name = e.name } })
  if live == nil then return nil, err end
  local md = live and live.metadata or {}
  if (md.labels or {})["kupenstack.io/release"] == spec.name and
    (md.annotations or {})["kupenstack.io/release"] == spec.namespace .. "/" .. spec.name then
    return md.uid
  end
  return nil
end


-- Delete what the inventory holds but objs no longer declare, newest first.
function _M.prune(ctx, spec, keep)
  local inv, left = ctx.st.inventory, {}
  for i = #inv, 1, -1 do
    local e = inv[i]
    if not keep[e.kind .. "/" .. e.name] then
      if not e.uid then
        local uid, uerr = uid_of_own(e, spec)
        if uerr then return nil, uerr end
        e = uid and { apiVersion = e.apiVersion, kind = e.kind, name = e.name, uid = uid }
      end
      if e then
        local ok, err = apply.remove(e, spec.namespace, ctx)
        if not ok then return nil, err end
      end
    end
  end
  for _, e in ipairs(inv) do
    if keep[e.kind .. "/" .. e.name] then left[#left + 1] = e end
  end
  return left
end


return _M
