-- ks/neutron.lua: the operations every Neutron resource kind shares (networks, subnets,
-- ports, routers, security groups, floating IPs), for ks.resource.
--
-- Neutron here cannot tag at creation (no tag-creation extension), so a new resource is
-- tagged right after its POST; a create whose tagging was lost (a crash in between) is
-- found again by its name among the project's untagged resources of that kind.
local resource = require "ks.resource"

local ipairs = ipairs
local type = type
local pairs = pairs
local sort = table.sort


local _M = {}


local function is_ours(tags)
  for _, t in ipairs(tags or {}) do
    if t:sub(1, #resource.UID_TAG_PREFIX) == resource.UID_TAG_PREFIX then
      return true
    end
  end
  return false
end


local function same_set(a, b)
  if #a ~= #b then
    return false
  end
  local x, y = {}, {}
  for i, v in ipairs(a) do
    x[i] = v
  end
  for i, v in ipairs(b) do
    y[i] = v
  end
  sort(x)
  sort(y)
  for i = 1, #x do
    if x[i] ~= y[i] then
      return false
    end
  end
  return true
end


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


-- The ks.resource definition for a Neutron kind. d: kind, path ("/networks"), key
-- ("network"), plural (the collection's key and tags path, "networks"), desired(obj, deps)
-- -> the body's fields, mutable (keys updated in place), and ks.resource's optional
-- depends, resolve, immutable, observe, poll.
function _M.kind(d)
  local path, key, plural = d.path, d.key, d.plural
  local tags_path = path:sub(2)
  local def = {
    kind = d.kind, depends = d.depends, resolve = d.resolve, immutable = d.immutable,
    observe = d.observe, poll = d.poll, concurrency = d.concurrency,
  }

  function def.get(cloud, id)
    local body, err = cloud:request("network", "GET", path .. "/" .. id)
    return body and body[key], err
  end

  function def.find(cloud, filter)
    local q = {}
    for k, v in pairs(filter) do
      q[k] = type(v) == "table" and table.concat(v, ",") or v
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
    if d.no_name then
      return nil
    end
    items, err = cloud:list("network", path, plural, { query = { name = resource.name(obj) } })
    if not items then
      return nil, err
    end
    for _, it in ipairs(items) do
      if not is_ours(it.tags) then
        local _, terr = set_tags(cloud, tags_path, it.id, wanted_tags(obj, it, true))
        if terr then
          return nil, terr
        end
        return def.get(cloud, it.id)
      end
    end
    return nil
  end

  function def.create(cloud, obj, deps)
    local body, err = cloud:request("network", "POST", path,
      { body = { [key] = d.desired(obj, deps) } })
    if not body then
      return nil, err
    end
    local cur = body[key]
    local _, terr = set_tags(cloud, tags_path, cur.id, wanted_tags(obj, cur, true))
    if terr then
      return nil, terr
    end
    return def.get(cloud, cur.id)
  end

  function def.update(cloud, cur, obj, deps)
    local changed = false
    local want = wanted_tags(obj, cur, false)
    if want and not same_set(want, cur.tags or {}) then
      local _, terr = set_tags(cloud, tags_path, cur.id, want)
      if terr then
        return nil, terr
      end
      changed = true
    end
    local diff = resource.diff(d.desired(obj, deps), cur, d.mutable)
    if diff then
      local body, err = cloud:request("network", "PUT", path .. "/" .. cur.id,
        { body = { [key] = diff } })
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
      return def.get(cloud, cur.id)
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
    return cloud:request("network", "DELETE", path .. "/" .. cur.id, { expect = { 204 } })
  end

  return def
end


return _M
