-- ks/resource/pace.lua: how fast ks.resource goes at a cloud, for the kinds that ask.
--
-- def.list(cloud): the resources of the project on their way (servers in BUILD, say): when
-- at least 2 objects of a namespace are polled at once, their polls share one such list
-- (ks.resource.poll) instead of a GET each; one the list does not hold (no longer on its way) is
-- then asked for alone. The list holds only what is on its way, so its cost goes with
-- the number polled, not with how many resources the project has; while it is shared,
-- each of them looks every LIST_TTL seconds rather than every def.poll.
-- def.max_creating (a number, or function(ctx) giving it; 0 or nil: no limit): at most
-- that many objects of a kind and namespace are being created at once, from the create
-- until the resource is no longer on its way, as a script creating one resource after
-- another with that many threads would; the others wait their turn (ks.resource.slots). A
-- watch of the kind itself (watch(def)) hands a freed slot to the one that has waited
-- longest at once; each waiter also looks again on a timer.
local kube = require "ks.core.kube"
local time = require "ks.core.time"
local poll = require "ks.resource.poll"
local slots = require "ks.resource.slots"
local refs = require "ks.resource.refs"

local type = type
local ipairs = ipairs
local random = math.random


local _M = {}

-- How old a shared list may be when a poll takes its resource from it (seconds).
local LIST_TTL = 1

-- Was obj progressing at its last reconcile, with nothing changed in its spec since?
local function polling(obj)
  local gen = obj.metadata.generation
  for _, c in ipairs((obj.status and obj.status.conditions) or {}) do
    if c.type == "Progressing" then
      return c.status == "True" and c.reason == "Progressing" and c.observedGeneration == gen
    end
  end
  return false
end


-- How many objects of kind in ns are polling, counted at most once a second: { at =,
-- polling = } by kind and namespace.
local counts = {}


local function count_polling(kind, ns)
  local k, now = kind .. "\0" .. (ns or ""), time.monotonic()
  local c = counts[k]
  if not c or now - c.at > 1 then
    c = { at = now, polling = 0 }
    for _, o in ipairs(kube.list(refs.res(kind), { namespace = ns })) do
      if o.status and o.status.id and polling(o) then
        c.polling = c.polling + 1
      end
    end
    counts[k] = c
  end
  return c.polling
end


-- Do obj's polls share a list with the others of its namespace?
local function sharing(def, obj)
  return def.list ~= nil and polling(obj) and count_polling(def.kind, obj.metadata.namespace) >= 2
end


-- obj's resource from a list shared with the other polls of its namespace (ks.resource.poll), or
-- nil: get it alone (def has no list, obj is not polling, too few are, the list does not
-- hold it, or there is none to trust).
function _M.polled(def, cloud, obj)
  if not sharing(def, obj) then
    return nil
  end
  return poll.get(def.kind, cloud, obj.status.id, def.list, LIST_TTL)
end


-- Seconds until a progressing obj looks at its resource again: def.poll (default 3), or
-- the list's LIST_TTL while its polls share one: a look then costs OpenStack nothing
-- more, and a list up to LIST_TTL old seen every def.poll would see a change later than
-- a GET every def.poll does.
function _M.interval(def, obj)
  if sharing(def, obj) then
    return LIST_TTL
  end
  return def.poll or 3
end


-- Is o's condition Available True? (ks.resource.refs's)
_M.is_available = refs.is_available


-- The slots of def.max_creating: by kind and namespace (one set for a cluster-scoped kind,
-- whose objects have none).
local function slot_key(def, obj)
  return def.kind .. "\0" .. (obj.metadata.namespace or "")
end


-- Take a slot for obj's create; nil, or what it waits for (no slot free) and when to try
-- again: after poll seconds and a random part of half a second per waiter, so that with
-- many waiters one comes about every quarter of a second, however many there are.
function _M.take(def, obj, ctx)
  local limit = def.max_creating
  if type(limit) == "function" then
    limit = limit(ctx)
  end
  if not limit or limit <= 0 then
    return nil
  end
  local ns = obj.metadata.namespace
  local function still(name)
    local o = kube.get(refs.res(def.kind), ns, name)
    return o ~= nil and not o.metadata.deletionTimestamp and not _M.is_available(o)
  end
  local key = slot_key(def, obj)
  if slots.take(key, obj.metadata.name, limit, still) then
    return nil
  end
  return "at most " .. limit .. " " .. def.kind .. " objects of a namespace are created at "
    .. "once; waiting for one of them to be done",
    (def.poll or 3) + random() * 0.5 * slots.waiting(key)
end


-- Did a reconcile's result leave the resource on its way (and so still holding its slot)?
function _M.building(result)
  if not (result and result.status and result.status.id) then
    return false
  end
  for _, c in ipairs(result.conditions or {}) do
    if c.type == "Progressing" then
      return c.status == "True" and c.reason == "Progressing"
    end
  end
  return false
end


-- obj's create is over (failed, or the resource is no longer on its way): its slot back.
function _M.release(def, obj)
  slots.release(slot_key(def, obj), obj.metadata.name)
end


-- obj is being deleted: its slot back, and it waits for one no more.
function _M.drop(def, obj)
  slots.drop(slot_key(def, obj), obj.metadata.name)
end


-- This state wrote to resource id of def's kind: lists asked for before do not hold it.
function _M.wrote(def, id)
  poll.wrote(def.kind, id)
end


-- The watch of def's own kind for its plugin: when one of its objects changes or goes
-- (a create is done, a slot freed), the longest waiters of that namespace, as many as
-- slots are free, are reconciled now rather than at their next look.
function _M.watch(def)
  return { group = refs.GROUP, version = refs.VERSION, kind = def.kind, map = function(o)
    local ns = o.metadata.namespace
    local keys = {}
    for i, name in ipairs(slots.next(slot_key(def, o))) do
      keys[i] = ns and ns .. "/" .. name or name
    end
    return keys
  end }
end


return _M
