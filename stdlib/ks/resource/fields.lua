-- ks/resource/fields.lua: small things the Nova, Glance and Cinder kinds share: JSON null as nil,
-- the OpenStack name of an object, the fields of a resource that are set, the resources a
-- spec.import.filter matches, and status.resource written so that what OpenStack no
-- longer reports goes away.
local json = require "ks.core.json"
local has = require("ks.resource.compare").has

local type = type
local pairs = pairs
local ipairs = ipairs
local getmetatable = getmetatable


local _M = {}


-- v, or nil for JSON null (and for "" when empty is true).
function _M.value(v, empty)
  if v == json.null or (empty and v == "") then
    return nil
  end
  return v
end


-- The subset of cur with the given keys that are set: JSON null left out (and "" when
-- empty is true).
function _M.present(cur, keys, empty)
  local out = {}
  for _, k in ipairs(keys) do
    local v = _M.value(cur[k], empty)
    if v ~= nil then
      out[k] = v
    end
  end
  return out
end


-- The items (a list from OpenStack) a spec.import.filter matches: each of keys (default
-- {"name"}) that filter sets equal, and every tag of filter.tags among the item's tags.
function _M.matching(items, filter, keys)
  local out = {}
  for _, it in ipairs(items) do
    local ok = true
    for _, k in ipairs(keys or { "name" }) do
      if filter[k] ~= nil and it[k] ~= filter[k] then
        ok = false
      end
    end
    for _, t in ipairs(filter.tags or {}) do
      if not has(it.tags, t) then
        ok = false
      end
    end
    if ok then
      out[#out + 1] = it
    end
  end
  return out
end


-- spec and spec.resource of obj ({} when absent).
function _M.spec_of(obj)
  local spec = obj.spec or {}
  return spec, spec.resource or {}
end


-- The OpenStack name: spec.resource.name, else metadata.name; nil for an import that
-- names none (an adopted resource keeps its name).
function _M.os_name(obj)
  local spec, r = _M.spec_of(obj)
  if r.name then
    return r.name
  end
  if spec.import then
    return nil
  end
  return obj.metadata.name
end


local function is_object(t)
  return type(t) == "table" and t ~= json.null and getmetatable(t) == nil and t[1] == nil
end


-- fields (the new status.resource) with JSON null for every key of old (the current one)
-- it no longer has, at any depth of nested objects: the host merges status.resource into
-- the object with a JSON merge patch, which leaves a key that is simply absent in place.
-- JSON nulls already in fields are kept (they delete too). Returns fields.
function _M.observed(fields, old)
  if not is_object(old) then
    return fields
  end
  for k, v in pairs(old) do
    local n = fields[k]
    if n == nil then
      fields[k] = json.null
    elseif is_object(n) and is_object(v) then
      _M.observed(n, v)
    end
  end
  return fields
end


-- def.observe for ks.resource from observe(cur, obj): its fields made observed() against
-- obj's status.resource.
function _M.observer(observe)
  return function(cur, obj)
    local fields, state, message = observe(cur, obj)
    local st = obj and obj.status
    return _M.observed(fields, st and st.resource), state, message
  end
end


-- For def.update after a change: get(cloud, id) again, and true (changed); or nil and an
-- error.
function _M.reread(get, cloud, id)
  local cur, err = get(cloud, id)
  if not cur then
    return nil, err
  end
  return cur, true
end


return _M
