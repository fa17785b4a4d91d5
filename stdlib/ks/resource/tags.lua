-- ks/resource/tags.lua: the tags of a resource whose service can tag at creation (Nova servers,
-- Glance images): the user's (spec.resource.tags) and our UID tag, which stays on what we
-- made and is never added to what we adopted by spec.import.
local resource = require "ks.resource"

local ipairs = ipairs
local tostring = tostring
local sort = table.sort


local _M = {}


-- Whether lists a and b (nil: empty) hold the same strings, in any order; values that are
-- not strings compare as their tostring().
function _M.same_set(a, b)
  a, b = a or {}, b or {}
  if #a ~= #b then
    return false
  end
  local x, y = {}, {}
  for i, v in ipairs(a) do
    x[i] = tostring(v)
  end
  for i, v in ipairs(b) do
    y[i] = tostring(v)
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


-- The tags of a new resource for obj: spec.resource.tags and our UID tag.
function _M.initial(obj)
  local r = (obj.spec and obj.spec.resource) or {}
  local want = {}
  for i, t in ipairs(r.tags or {}) do
    want[i] = t
  end
  local uid = resource.uid_tag(obj)
  if not resource.has(want, uid) then
    want[#want + 1] = uid
  end
  return want
end


-- The tags cur_tags should become, or nil when they are right (or spec.resource.tags is
-- unset: then they are left as they are). Our UID tag is kept where it is.
function _M.wanted(obj, cur_tags)
  local r = (obj.spec and obj.spec.resource) or {}
  if not r.tags then
    return nil
  end
  local want = {}
  for i, t in ipairs(r.tags) do
    want[i] = t
  end
  local uid = resource.uid_tag(obj)
  if resource.has(cur_tags, uid) and not resource.has(want, uid) then
    want[#want + 1] = uid
  end
  if _M.same_set(want, cur_tags) then
    return nil
  end
  return want
end


return _M
