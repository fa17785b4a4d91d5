-- ks/resource/sync.lua: what to change so that what OpenStack has matches what the spec
-- wants, for a map (extra specs, image properties, metadata) or a set (projects a flavor
-- is shared with), as pure functions, and the loop that applies those changes.
--
--   local set, unset = sync.map(have, want, keep)  -- keys to set (want's value), to remove
--   local add, remove = sync.set(have, want)       -- members to add, to remove
--   local changed, err = sync.apply(add, remove, add_one, remove_one)
--
-- A map's keys come sorted, so its requests go out in one order; a set's members in the
-- order of their list.
local openstack = require "ks.openstack"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local sort = table.sort


local _M = {}


local function sorted(t)
  sort(t, function(a, b) return tostring(a) < tostring(b) end)
  return t
end


-- The keys of want whose value have does not hold, and the keys of removable (have, unless
-- told) that want has not and keep (a set) does not name. Nothing to remove when want is
-- nil: a spec that does not say leaves the map alone.
function _M.map(have, want, keep, removable)
  local set, unset = {}, {}
  if want == nil then
    return set, unset
  end
  for k, v in pairs(want) do
    if have[k] ~= v then
      set[#set + 1] = k
    end
  end
  for k in pairs(removable or have) do
    if want[k] == nil and not (keep and keep[k]) then
      unset[#unset + 1] = k
    end
  end
  return sorted(set), sorted(unset)
end


-- The members of want (a list) have (a list) lacks, and those of have want lacks.
function _M.set(have, want)
  local in_have, in_want, add, remove = {}, {}, {}, {}
  for _, v in ipairs(have) do
    in_have[v] = true
  end
  for _, v in ipairs(want) do
    in_want[v] = true
    if not in_have[v] then
      add[#add + 1] = v
    end
  end
  for _, v in ipairs(have) do
    if not in_want[v] then
      remove[#remove + 1] = v
    end
  end
  return add, remove
end


-- add_one(x) for each of add, then remove_one(x) for each of remove, each returning
-- true or nil and an error; stops at the first error. Returns whether anything was
-- asked (true or false), or nil and the error.
function _M.apply(add, remove, add_one, remove_one)
  for _, x in ipairs(add) do
    local ok, err = add_one(x)
    if not ok then
      return nil, err
    end
  end
  for _, x in ipairs(remove) do
    local ok, err = remove_one(x)
    if not ok then
      return nil, err
    end
  end
  return #add + #remove > 0
end


-- For apply: true, or nil and err, from a call whose answer does not matter (only its
-- error); done_or_gone takes "not found" for done (what was to be removed is gone).
function _M.done(_, err)
  if err then
    return nil, err
  end
  return true
end


function _M.done_or_gone(_, err)
  if err and not openstack.is_not_found(err) then
    return nil, err
  end
  return true
end


return _M
