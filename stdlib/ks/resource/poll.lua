-- ks/resource/poll.lua: resources on their way somewhere (servers in BUILD), many at a time, looked
-- at with one list of their project instead of a GET each. On a small cloud that matters:
-- a Nova API worker answers a GET /servers/{id} with two Neutron queries of its own, and
-- a hundred servers polled one by one every 2 s keep Nova and Neutron busy enough to
-- slow the builds themselves down.
--
-- A list is shared by every task of this Lua state for ttl seconds from when its answer
-- came (so that lists slower than ttl do not follow one another back to back); while one
-- task fetches it, the others wait for it. A resource this state wrote to
-- (created, changed, acted on, deleted) after a list was asked for is not taken from that
-- list, so a task never acts on a view older than its own last write.
local time = require "ks.core.time"

local pairs = pairs
local ipairs = ipairs
local monotonic = time.monotonic


local _M = {}

-- How long a task waits for another's list before asking for its resource alone.
_M.WAIT = 10

-- Lists by key, project and list function: { at = when asked for, done = when answered,
-- items = { [id] = resource } }, or { fetching = since } while a task fetches it.
local lists = {}
-- When this state last wrote to a resource, by key and ID.
local writes = {}


-- This state wrote to resource id of kind key just now.
function _M.wrote(key, id)
  if id then
    writes[key .. "\0" .. id] = monotonic()
  end
end


-- Resource id of kind key changed just now, as someone else says (a notification from the
-- cloud): no list asked for before now is trusted for it; the next look is a GET.
_M.changed = _M.wrote


-- Fetch the list into lists[k]; the entry, or nil.
local function fetch(k, cloud, list)
  local at = monotonic()
  lists[k] = { fetching = at }
  local items = list(cloud)
  if not items then
    lists[k] = nil
    return nil
  end
  local by_id = {}
  for _, r in ipairs(items) do
    by_id[r.id] = r
  end
  -- Writes older than this list no longer hide anything from it or a later one.
  for w, t in pairs(writes) do
    if t < at then
      writes[w] = nil
    end
  end
  lists[k] = { at = at, done = monotonic(), items = by_id }
  return lists[k]
end


-- Resource id of kind key as a list of cloud's project (list(cloud): the resources of
-- the project, or nil and an error) answered at most ttl seconds ago says it is; nil when
-- there is none to trust (the list failed, does not hold id, or is older than this state's
-- last write to id): then ask for it alone.
function _M.get(key, cloud, id, list, ttl)
  local project = cloud:project_id()
  if not project then
    return nil
  end
  -- one list per list function too: a list of the servers in BUILD (ks.resource.pace) is
  -- not a list of all of them, and must not answer for one that is not building
  local k = key .. "\0" .. project .. "\0" .. tostring(list)
  local l = lists[k]
  local deadline = monotonic() + _M.WAIT
  while l and l.fetching and monotonic() < deadline do
    time.sleep(0.05)
    l = lists[k]
  end
  if not l or l.fetching or monotonic() - l.done > ttl then
    l = fetch(k, cloud, list)
  end
  local w = writes[key .. "\0" .. id]
  if not l or (w and w >= l.at) then
    return nil
  end
  return l.items[id]
end


return _M
