-- ks/release/state.lua: what a release keeps between reconciles, in one Secret of its
-- namespace (kupenstack-release-NAME, type kupenstack.io/release), so that it survives a
-- restart of the host and grows with the release, not with time: the inventory (one entry
-- per applied object: apiVersion, kind, name, UID, digest of what was applied), the
-- history (the last KEEP revisions: their values, the digest of their render), the hook
-- runs (by hook: the digest of the Job run last and whether it succeeded) and the pinned
-- generated values and the content digest of each repository chart seen (the pin of a
-- version). Each is a key of the Secret holding canonical JSON, so that the same
-- state encodes to the same bytes and saving an unchanged state writes nothing.
local kube = require "ks.core.kube"
local json = require "ks.core.json"
local base64 = require "ks.base64"
local util = require "ks.release.util"

local ipairs = ipairs
local type = type


local _M = {}

_M.KEEP = 10
local KEYS = { "inventory", "history", "hooks", "pins", "installed", "charts" }
local SECRET = { apiVersion = "v1", kind = "Secret" }


function _M.secret_name(name)
  return "kupenstack-release-" .. name
end


-- The state of release name in ns: a table with the KEYS (empty ones for a new release),
-- plus .raw (the encoded data, to tell whether it changed); or nil, err.
function _M.load(ns, name)
  local s, err = kube.fetch(SECRET, ns, _M.secret_name(name))
  local st = { inventory = {}, history = {}, hooks = {}, pins = {}, installed = false,
               charts = {}, raw = {} }
  if not s then
    if type(err) == "table" and err.code == 404 then return st end
    if err == nil then return st end
    return nil, "could not read the release's state: " .. tostring(err)
  end
  st.uid = s.metadata.uid
  for _, k in ipairs(KEYS) do
    local b64 = (s.data or {})[k]
    if b64 then
      local text = base64.decode(b64)
      local v = text and json.decode(text)
      if v == nil then
        return nil, "the release's state Secret has a malformed '" .. k .. "'"
      end
      st[k] = v
      st.raw[k] = b64
    end
  end
  return st
end


-- Write st when its encoding differs from what was loaded; returns the number of writes
-- (0 or 1), or nil, err. owner: an object for the Secret's ownerReference, or nil.
function _M.save(ns, name, st, owner, labels)
  local data, changed = {}, false
  for _, k in ipairs(KEYS) do
    -- A key new in this version is left out while empty: an upgrade writes nothing.
    if st.raw[k] ~= nil or type(st[k]) ~= "table" or next(st[k]) ~= nil then
      data[k] = base64.encode(util.canonical(st[k]))
      if data[k] ~= st.raw[k] then changed = true end
    end
  end
  if not changed then return 0 end
  local obj = {
    apiVersion = "v1", kind = "Secret", type = "kupenstack.io/release",
    metadata = { name = _M.secret_name(name), namespace = ns, labels = labels },
    data = data,
  }
  if owner and owner.metadata and owner.metadata.uid then
    obj.metadata.ownerReferences = { { apiVersion = owner.apiVersion, kind = owner.kind,
                                       name = owner.metadata.name, uid = owner.metadata.uid } }
  end
  local ok, err = kube.apply(obj, { force = true, field_manager = "kupenstack-release" })
  if not ok then
    return nil, "could not save the release's state: " .. util.truncate(tostring(err))
  end
  st.raw = data
  return 1
end


-- Delete the state Secret (the release is gone).
function _M.drop(ns, name)
  local ok, err = kube.delete(SECRET, ns, _M.secret_name(name))
  if not ok and not (type(err) == "table" and err.code == 404) then
    return nil, "could not delete the release's state: " .. tostring(err)
  end
  return true
end


return _M
