-- ks/resource/users.lua: "who uses me": the objects of the namespace whose spec refers to
-- an object, which ks.resource waits for before it deletes the object's resource (def.users),
-- and the watches that look at the object again when one of them changes or goes.
--
--   users = {
--     { kind = "Instance", ref = "spec.imageRef", says = "boots from it" },
--     { kind = "Subnet", ref = "spec.networkRef" },
--     { kind = "SecurityGroup", refs = function(o) return {names} end },
--   }
--
-- ref: the dotted path of a {name = ...} reference in the user's object; refs: the names
-- it refers to, computed. says: how the message says what they do ("Instance vm1 boots
-- from it"); without it, "Subnet s1 of this namespace refers to it: delete it first".
local kube = require "ks.core.kube"
local at = require("ks.resource.immutable").at
local refs = require "ks.resource.refs"

local type = type
local ipairs = ipairs
local concat = table.concat


local _M = {}


-- The names user object o of entry u refers to.
local function names_of(u, o)
  if u.refs then
    return u.refs(o) or {}
  end
  local r = at(o, u.ref)
  return { type(r) == "table" and r.name or nil }
end


local function refers(u, o, name)
  for _, n in ipairs(names_of(u, o)) do
    if n == name then
      return true
    end
  end
  return false
end


-- The objects of obj's namespace, not being deleted, that refer to it: a conflict error
-- naming them (ks.resource waits on it), or nil when there are none.
function _M.still_used(obj, list)
  local ns, name, parts, n = obj.metadata.namespace, obj.metadata.name, {}, 0
  local plain = {}
  for _, u in ipairs(list) do
    local names = {}
    for _, o in ipairs(kube.list(refs.res(u.kind), { namespace = ns })) do
      if not o.metadata.deletionTimestamp and o.metadata.uid ~= obj.metadata.uid
          and refers(u, o, name) then
        names[#names + 1] = u.kind .. " " .. o.metadata.name
      end
    end
    if #names > 0 and u.says then
      parts[#parts + 1] = concat(names, ", ") .. " " .. u.says
    elseif #names > 0 then
      for _, s in ipairs(names) do
        plain[#plain + 1] = s
      end
    end
    n = n + #names
  end
  if n == 0 then
    return nil
  end
  if #plain > 0 then
    parts[#parts + 1] = concat(plain, ", ") .. " of this namespace "
      .. (#plain == 1 and "refers" or "refer") .. " to it: delete "
      .. (#plain == 1 and "it" or "them") .. " first"
  end
  return { kind = "conflict", message = concat(parts, "; ") }
end


-- The watch of users entry u for a kind of namespaced objects: a change of a user looks
-- at the objects it refers to.
function _M.watch(u)
  return {
    group = refs.GROUP, version = refs.VERSION, kind = u.kind,
    map = function(o)
      local keys = {}
      for _, n in ipairs(names_of(u, o)) do
        if type(n) == "string" then
          keys[#keys + 1] = o.metadata.namespace .. "/" .. n
        end
      end
      return keys
    end,
  }
end


return _M
