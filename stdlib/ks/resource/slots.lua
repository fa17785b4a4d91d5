-- ks/resource/slots.lua: at most a given number of things at once per key (the Instances of a
-- namespace whose servers are being built), counted by every task of this Lua state.
--
-- A holder takes a slot before it starts and releases it when it is done. One this state
-- lost track of (its object deleted without a finalize, say) would hold its slot for
-- ever: so when the slots of a key are full, still(name) is asked of each holder, at most
-- every PRUNE seconds, and those no longer on their way give theirs up.
--
-- Those refused a slot are remembered in the order they first asked: next(key) names the
-- oldest of them, as many as there are free slots, so that a freed slot can be offered
-- to the one that has waited longest.
local time = require "ks.core.time"

local pairs = pairs
local sort = table.sort


local _M = {}

_M.PRUNE = 5

local held = {}    -- key -> { [name] = true }
local waiting = {} -- key -> { [name] = n }: refused a slot (the n-th to ask), none given since
local limits = {}  -- key -> the limit its last take() was given
local pruned = {}  -- key -> when its holders were last asked
local asked = 0    -- how many were refused, ever: the order of the waiters


local function count(names)
  local n = 0
  for _ in pairs(names) do
    n = n + 1
  end
  return n
end


-- Slots of key held now.
function _M.held(key)
  return count(held[key] or {})
end


-- Names refused a slot of key and not given one (nor released) since.
function _M.waiting(key)
  return count(waiting[key] or {})
end


-- Take a slot of key for name if fewer than limit are held (name holding one already:
-- true). still(name) is as above. Returns true, or false and how many are held.
function _M.take(key, name, limit, still)
  local names = held[key]
  if not names then
    names = {}
    held[key], waiting[key] = names, {}
  end
  limits[key] = limit
  if names[name] then
    return true
  end
  local n = count(names)
  local now = time.monotonic()
  if n >= limit and now - (pruned[key] or -1 / 0) >= _M.PRUNE then
    pruned[key] = now
    for other in pairs(names) do
      if not still(other) then
        names[other] = nil
      end
    end
    n = count(names)
  end
  if n >= limit then
    if not waiting[key][name] then
      asked = asked + 1
      waiting[key][name] = asked
    end
    return false, n
  end
  names[name] = true
  waiting[key][name] = nil
  return true
end


-- Give name's slot of key back (nothing if it holds none).
function _M.release(key, name)
  if held[key] then
    held[key][name] = nil
  end
end


-- name is gone (deleted): its slot given back, and it waits no more.
function _M.drop(key, name)
  if held[key] then
    held[key][name] = nil
    waiting[key][name] = nil
  end
end


-- The names that have waited longest for a slot of key, as many as there are slots free
-- (by the limit take() was last given), oldest first.
function _M.next(key)
  local free = (limits[key] or 0) - _M.held(key)
  if free <= 0 then
    return {}
  end
  local names = {}
  for name in pairs(waiting[key] or {}) do
    names[#names + 1] = name
  end
  local w = waiting[key]
  sort(names, function(a, b) return w[a] < w[b] end)
  for i = free + 1, #names do
    names[i] = nil
  end
  return names
end


return _M
