-- plugins/keypair.lua: kupenstack.io/v1alpha1 KeyPair -> a Nova key pair.
--
-- Key pairs belong to a user, not to a project, and every namespace acts as the operator's
-- user: so that two namespaces' "mykey" do not collide, ours is named
-- "<namespace>-<name>" unless spec.resource.name says otherwise. Nova has nothing to tag a
-- key pair with: the one named so with the same public key is ours (the key pair's name is
-- its ID). Nothing of a key pair can change: a changed name, key or type is refused.
local resource = require "ks.resource"
local openstack = require "ks.openstack"
local nova = require "ks.nova"
local fields_of = require "ks.fields"

local ipairs = ipairs
local tostring = tostring


local function spec_resource(obj)
  local _, r = fields_of.spec_of(obj)
  return r
end



-- The key pair's name in Nova.
local function keypair_name(obj)
  local r = spec_resource(obj)
  return r.name or (obj.metadata.namespace .. "-" .. obj.metadata.name)
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


local function find(cloud, filter)
  local all, err = nova.keypairs(cloud)
  if not all then
    return nil, err
  end
  local out = {}
  for _, kp in ipairs(all) do
    if filter.name == nil or kp.name == filter.name then
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


local function immutable(obj, cur)
  local spec = obj.spec or {}
  local r = spec.resource
  if not r then
    return nil
  end
  local name = spec.import and r.name or keypair_name(obj)
  if name and name ~= cur.name then
    return "the key pair's name is immutable: it is " .. tostring(cur.name)
      .. "; delete and recreate the KeyPair to change it"
  end
  if r.public_key and key_text(r.public_key) ~= key_text(cur.public_key) then
    return "spec.resource.public_key is immutable: key pair " .. tostring(cur.name)
      .. " has the key with fingerprint " .. tostring(cur.fingerprint)
      .. "; delete and recreate the KeyPair to change it"
  end
  if r.type and cur.type and r.type ~= cur.type then
    return "spec.resource.type is immutable: key pair " .. tostring(cur.name) .. " is of type "
      .. tostring(cur.type) .. "; delete and recreate the KeyPair to change it"
  end
  return nil
end


local function observe(cur)
  local fields = resource.pick(cur, { "name", "type", "fingerprint", "public_key", "user_id",
    "created_at" })
  return fields, "available", "key pair " .. tostring(cur.name) .. " exists"
end


return resource.plugin {
  kind = "KeyPair",
  get = nova.keypair_get, find_own = find_own, find = find, create = create,
  immutable = immutable, observe = fields_of.observer(observe),
  delete = function(cloud, cur) return nova.keypair_delete(cloud, cur.name) end,
}
