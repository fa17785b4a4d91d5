-- plugins/keypair.lua: kupenstack.io/v1alpha1 KeyPair -> a Nova key pair.
--
-- Key pairs belong to a user, not to a project, and every namespace acts as the operator's
-- user, which sees all of them. So that a namespace only ever sees and touches its own,
-- ours is named "<namespace>_<name>" (name: spec.resource.name, else metadata.name with its
-- dots as "_", which Nova refuses before 2.92): Kubernetes names have no "_", so the part
-- before the first "_" is the namespace, and two namespaces' names can never be the same
-- ("a-b/c" is "a-b_c", "a/b-c" is "a_b-c"). An import (spec.import.id, or the name of
-- spec.import.filter) must name a key pair of the namespace's own ("<namespace>_..."): any
-- other is refused with InvalidConfiguration, and a filter only ever matches the
-- namespace's own. (Per-project users would need a Keystone user, a password and a role
-- for each namespace, and a token per user, for a resource that holds only a public key:
-- the prefix gives the same isolation with the operator's one user.) Nova has nothing to
-- tag a key pair with: the one named so with the same public key is ours (the key pair's
-- name is its ID). Nothing of a key pair can change: a changed name, key or type is refused.
local resource = require "ks.resource"
local openstack = require "ks.openstack"
local nova = require "ks.openstack.nova"
local fields_of = require "ks.resource.fields"

local ipairs = ipairs
local type = type
local tostring = tostring


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end



-- The prefix of every key pair of obj's namespace.
local function prefix(obj)
  return obj.metadata.namespace .. "_"
end


local function is_own(obj, name)
  local p = prefix(obj)
  return type(name) == "string" and name:sub(1, #p) == p
end


-- The key pair's name in Nova.
local function keypair_name(obj)
  local r = spec_resource(obj)
  return prefix(obj) .. (r.name or (obj.metadata.name:gsub("%.", "_")))
end


-- What an import names, when it is not the namespace's own: a message; else nil.
local function foreign_import(obj)
  local imp = (obj.spec or {}).import
  local name = imp and (imp.id or (imp.filter and imp.filter.name))
  if imp and not is_own(obj, name) then
    return "spec.import may only name a key pair of this namespace's own, named "
      .. prefix(obj) .. "...: " .. tostring(name) .. " is not"
  end
  return nil
end


-- By name (import by id): only the namespace's own.
local function get(cloud, name, obj)
  if obj and not is_own(obj, name) then
    return nil, { kind = "invalid", message = foreign_import(obj) }
  end
  return nova.keypair_get(cloud, name)
end


-- A key with its trailing white space gone (Nova keeps what it was given).
local function key_text(k)
  return (tostring(k or ""):gsub("%s+$", ""))
end


local function find_own(cloud, obj)
  local name = keypair_name(obj)
  local cur, err = nova.keypair_get(cloud, name)
  if not cur then
    if openstack.is_not_found(err) then
      return nil
    end
    return nil, err
  end
  if key_text(cur.public_key) ~= key_text(spec_resource(obj).public_key) then
    return nil -- someone else's: create says so
  end
  return cur
end


local function find(cloud, filter, obj)
  local all, err = nova.keypairs(cloud)
  if not all then
    return nil, err
  end
  if filter.name ~= nil and not is_own(obj, filter.name) then
    return nil, { kind = "invalid", message = foreign_import(obj) }
  end
  local out = {}
  for _, kp in ipairs(all) do
    if is_own(obj, kp.name) and (filter.name == nil or kp.name == filter.name) then
      out[#out + 1] = kp
    end
  end
  return out
end


local function create(cloud, obj)
  local r = spec_resource(obj)
  local name = keypair_name(obj)
  local kp, err = nova.keypair_create(cloud, { name = name, public_key = r.public_key,
    type = r.type })
  if not kp then
    if type(err) == "table" and err.kind == "conflict" then
      return nil, { kind = "invalid", message = "a key pair named " .. name .. " already "
        .. "exists with another public key: choose another spec.resource.name, or adopt it "
        .. "with spec.import" }
    end
    return nil, err
  end
  -- The create answer has no type with some microversions: read it back.
  return nova.keypair_get(cloud, name)
end


-- Nothing of a key pair can change: a change is refused (InvalidConfiguration).
local IMMUTABLE = {
  { "spec.resource.name", have = "name", is = "the key pair is named",
    want = function(obj)
      local spec = obj.spec or {}
      return spec.resource and (spec.import and spec.resource.name or keypair_name(obj))
    end },
  { "spec.resource.public_key", have = "public_key", spec_says = false,
    same = function(want, have) return key_text(want) == key_text(have) end,
    is = function(_, _, cur)
      return "key pair " .. tostring(cur.name) .. " has the key with fingerprint "
        .. tostring(cur.fingerprint)
    end },
  { "spec.resource.type", have = "type",
    is = function(have, _, cur) return "key pair " .. tostring(cur.name) .. " is of type " .. have end },
}


local function observe(cur)
  local fields = resource.pick(cur, { "name", "type", "fingerprint", "public_key", "user_id",
    "created_at" })
  return fields, "available", "key pair " .. tostring(cur.name) .. " exists"
end


return resource.plugin {
  kind = "KeyPair",
  get = get, find_own = find_own, find = find, create = create,
  immutable = IMMUTABLE, observe = fields_of.observer(observe),
  delete = function(cloud, cur) return nova.keypair_delete(cloud, cur.name) end,
}
