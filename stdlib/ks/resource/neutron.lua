-- ks/resource/neutron.lua: the operations every Neutron resource kind shares (networks, subnets,
-- ports, routers, security groups, floating IPs), for ks.resource.
--
-- Neutron here cannot tag at creation (no tag-creation extension), so a new resource is
-- tagged right after its POST, and is created with a description that carries the UID tag
-- (own_description; the spec's description, if any, is set once it is tagged).
-- A create whose tagging was lost (a crash in between) is found again among the project's
-- untagged resources by that description, never by its name: a resource made by hand with
-- the same name is not ours, and is neither adopted nor deleted (only spec.import adopts
-- what we did not create).
local resource = require "ks.resource"
local openstack = require "ks.openstack"
local fault = require "ks.core.fault"
local os_name = require("ks.resource.fields").os_name
local same_set = require("ks.resource.tags").same_set

local ipairs = ipairs
local type = type
local pairs = pairs
local tostring = tostring
local concat = table.concat


local _M = {}


local function is_ours(tags)
  for _, t in ipairs(tags or {}) do
    if t:sub(1, #resource.UID_TAG_PREFIX) == resource.UID_TAG_PREFIX then
      return true
    end
  end
  return false
end


-- Do arrays of strings a and b hold the same strings, in any order (ks.resource.tags.same_set)?
_M.same_set = same_set


-- Do arrays a and b hold equal values (ks.resource.equal), in any order?
function _M.same_items(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b then
    return false
  end
  local used = {}
  for _, x in ipairs(a) do
    local found = false
    for j, y in ipairs(b) do
      if not used[j] and resource.equal(x, y) then
        used[j], found = true, true
        break
      end
    end
    if not found then
      return false
    end
  end
  return true
end


-- The description a resource is created with (kept while spec gives none): it names the
-- object and carries its UID tag, so that only a resource made for this object matches it.
function _M.own_description(obj)
  return "kupenstack " .. tostring(obj.metadata.namespace) .. "/" .. obj.metadata.name .. " "
    .. resource.uid_tag(obj)
end


-- The OpenStack name for obj: spec.resource.name, else metadata.name; nil for an import
-- that names none (ks.resource.fields.os_name).
_M.name = os_name


-- The ID of the kind object named name in obj's namespace once it exists in OpenStack and
-- is Available; nil and what to wait for otherwise.
function _M.available_id(obj, kind, name)
  local id, wait, o = resource.ref_id(obj.metadata.namespace, kind, name)
  if not id then
    return nil, wait
  end
  if resource.is_available(o) then
    return id
  end
  return nil, kind .. " " .. name .. " is not available yet"
end


-- The ID of the Network an {networkRef = {name}} or {network = {id | name}} choice names
-- (field: where it is in spec, for messages): the Network object's, or the OpenStack
-- network's, looked up by name (it must match exactly one). Or nil and what to wait for.
function _M.network_id(cloud, obj, choice, field)
  if choice.networkRef then
    return resource.ref_id(obj.metadata.namespace, "Network", choice.networkRef.name)
  end
  local n = choice.network or {}
  if n.id then
    return n.id
  end
  local items, err = cloud:list("network", "/networks", "networks", { query = { name = n.name } })
  if not items then
    return nil, "could not look up the network named " .. tostring(n.name) .. " (" .. field
      .. ".network.name): " .. resource.describe(err)
  end
  if #items == 0 then
    return nil, "no OpenStack network is named " .. tostring(n.name) .. " (" .. field
      .. ".network.name)"
  end
  if #items > 1 then
    local ids = {}
    for i, it in ipairs(items) do
      ids[i] = it.id
    end
    return nil, #items .. " OpenStack networks are named " .. n.name .. " (" .. concat(ids, ", ")
      .. "): name one by id in " .. field .. ".network.id"
  end
  return items[1].id
end


-- The objects of this namespace, not being deleted, that refer to obj: a conflict error
-- naming them, or nil (ks.resource.users; a kind says def.users instead).
_M.still_used = require("ks.resource.users").still_used


-- The tags cur should carry: the user's (spec.resource.tags) plus our UID tag when we
-- made it; nil when spec.resource.tags is unset (then tags are left as they are).
local function wanted_tags(obj, cur, force_uid)
  local r = (obj.spec and obj.spec.resource) or {}
  if not r.tags and not force_uid then
    return nil
  end
  local want = {}
  for i, t in ipairs(r.tags or cur.tags or {}) do
    want[i] = t
  end
  local uid = resource.uid_tag(obj)
  if (force_uid or resource.has(cur.tags, uid)) and not resource.has(want, uid) then
    want[#want + 1] = uid
  end
  return want
end


local function set_tags(cloud, plural, id, tags)
  return cloud:request("network", "PUT", "/" .. plural .. "/" .. id .. "/tags",
    { body = { tags = tags } })
end


-- The mutable fields of want that differ from have's: d.equal[k](w, h) where given,
-- else ks.resource.equal; a nil want is left as it is.
local function diff(d, want, have)
  local out, n = {}, 0
  for _, k in ipairs(d.mutable or {}) do
    local w = want[k]
    if w ~= nil then
      local same = d.equal and d.equal[k]
      local eq
      if same then
        eq = same(w, have[k])
      else
        eq = resource.equal(w, have[k])
      end
      if not eq then
        out[k] = w
        n = n + 1
      end
    end
  end
  return n > 0 and out or nil
end


-- The references, then what only the cloud can tell (d.lookup, e.g. a network by name).
local function resolver(d, def)
  if not d.resolve and not d.lookup then
    return nil
  end
  return function(obj)
    local deps = {}
    if d.resolve then
      local wait
      deps, wait = d.resolve(obj)
      if not deps then
        return nil, wait
      end
    end
    if d.lookup then
      local cloud, err, cwait = resource.cloud_for(obj, def)
      if not cloud then
        return nil, cwait or resource.describe(err)
      end
      return d.lookup(cloud, obj, deps)
    end
    return deps
  end
end


-- The ks.resource definition for a Neutron kind. d: kind, path ("/networks"), key
-- ("network"), plural (the collection's key and tags path, "networks"), desired(obj, deps)
-- -> the body's fields, mutable (keys updated in place), and optional:
--   equal = {field = function(want, have) end}  how to compare a mutable field
--   lookup(cloud, obj, deps) -> deps, or nil and what to wait for (after resolve)
--   after_update(cloud, cur, obj, deps) -> changed, err  (sub-resources: rules, interfaces)
--   before_delete(cloud, cur, obj) -> true, or nil and an error (a conflict waits)
-- and ks.resource's depends, resolve, immutable, users, observe, poll, concurrency.
function _M.kind(d)
  local path, key, plural = d.path, d.key, d.plural
  local tags_path = path:sub(2)
  local def = {
    kind = d.kind, depends = d.depends, immutable = d.immutable, users = d.users,
    observe = d.observe, poll = d.poll, concurrency = d.concurrency,
  }
  def.resolve = resolver(d, def)

  function def.get(cloud, id)
    local body, err = cloud:request("network", "GET", path .. "/" .. id)
    if not body then
      return nil, err
    end
    return body[key]
  end

  function def.find(cloud, filter)
    local q = {}
    for k, v in pairs(filter) do
      q[k] = type(v) == "table" and concat(v, ",") or v
    end
    return cloud:list("network", path, plural, { query = q })
  end

  function def.find_own(cloud, obj)
    local items, err = cloud:list("network", path, plural,
      { query = { tags = resource.uid_tag(obj) } })
    if not items then
      return nil, err
    end
    if items[1] then
      return items[1]
    end
    -- Only the project's own: an admin's token lists every project's.
    local pid, perr = cloud:project_id()
    if not pid then
      return nil, perr
    end
    local mark = _M.own_description(obj)
    items, err = cloud:list("network", path, plural,
      { query = { description = mark, project_id = pid } })
    if not items then
      return nil, err
    end
    for _, it in ipairs(items) do
      if it.description == mark and not is_ours(it.tags) then
        local done, terr = set_tags(cloud, tags_path, it.id, wanted_tags(obj, it, true))
        if not done then
          return nil, terr
        end
        return def.get(cloud, it.id)
      end
    end
    return nil
  end

  function def.create(cloud, obj, deps)
    local want = d.desired(obj, deps)
    local description = want.description
    want.description = _M.own_description(obj)
    local body, err = cloud:request("network", "POST", path, { body = { [key] = want } })
    if not body then
      return nil, err
    end
    local cur = body[key]
    fault.point(d.kind, "posted") -- made, not yet tagged: find_own adopts it by description
    local done, terr = set_tags(cloud, tags_path, cur.id, wanted_tags(obj, cur, true))
    if not done then
      return nil, terr
    end
    if description ~= nil and description ~= want.description then
      done, terr = cloud:request("network", "PUT", path .. "/" .. cur.id,
        { body = { [key] = { description = description } } })
      if not done then
        return nil, terr
      end
    end
    return def.get(cloud, cur.id)
  end

  function def.update(cloud, cur, obj, deps)
    local changed = false
    local want = wanted_tags(obj, cur, false)
    if want and not _M.same_set(want, cur.tags or {}) then
      local done, terr = set_tags(cloud, tags_path, cur.id, want)
      if not done then
        return nil, terr
      end
      changed = true
    end
    local fields = diff(d, d.desired(obj, deps), cur)
    if fields then
      local body, err = cloud:request("network", "PUT", path .. "/" .. cur.id,
        { body = { [key] = fields } })
      if not body then
        return nil, err
      end
      changed = true
    end
    if d.after_update then
      local more, aerr = d.after_update(cloud, cur, obj, deps)
      if aerr then
        return nil, aerr
      end
      changed = changed or more
    end
    if changed then
      local now, gerr = def.get(cloud, cur.id)
      if not now then
        return nil, gerr
      end
      return now, true
    end
    return cur, false
  end

  function def.delete(cloud, cur, obj)
    if d.before_delete then
      local ok, err = d.before_delete(cloud, cur, obj)
      if not ok then
        return nil, err
      end
    end
    -- No retries here: a resource in use answers 409 until its users go, and ks.resource
    -- waits for that with a condition saying so.
    local done, err = cloud:request("network", "DELETE", path .. "/" .. cur.id,
      { expect = { 204 }, retries = 0 })
    if not done and openstack.is_not_found(err) and def.get(cloud, cur.id) then
      -- Neutron answers a network's DELETE with 404 when one of its subnets goes at the
      -- same time (the subnet it was deleting is not found): it is still there.
      return nil, { kind = "transient", retryable = true, backoff = 2,
        message = "deleting " .. d.kind .. " " .. cur.id .. " raced with another deletion ("
          .. resource.describe(err) .. "); trying again" }
    end
    return done, err
  end

  return def
end


return _M
