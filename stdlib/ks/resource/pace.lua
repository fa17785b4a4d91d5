-- ks/resource/pace.lua: how fast ks.resource goes at a cloud, for the kinds that ask.
--
-- def.list: when several objects of a namespace are polled at once (at least 2, and at
-- least a tenth of them), their polls share one list of the project (ks.poll) instead
-- of a GET each.
-- def.max_creating (a number, or function(ctx) giving it; 0 or nil: no limit): at most
-- that many objects of a kind and namespace are being created at once, from the create
-- until the resource is no longer on its way, as a script creating one resource after
-- another with that many threads would; the others wait their turn (ks.slots). A
-- watch of the kind itself (watch(def)) hands a freed slot to the one that has waited
-- longest at once; each waiter also looks again on a timer.
local kube = require "ks.core.kube"
local time = require "ks.core.time"
local poll = require "ks.poll"
local slots = require "ks.slots"

local type = type
local ipairs = ipairs
local random = math.random


local _M = {}

local GROUP, VERSION = "kupenstack.io", "v1alpha1"


local function res(kind)
  return { group = GROUP, version = VERSION, kind = kind }
end


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


-- How many objects of kind in ns are polling, and how many there are, counted at most
-- once a second: { at =, polling =, all = } by kind and namespace.
local counts = {}


local function count_polling(kind, ns)
  local k, now = kind .. "\0" .. ns, time.monotonic()
  local c = counts[k]
  if not c or now - c.at > 1 then
    local all = kube.list(res(kind), { namespace = ns })
    c = { at = now, polling = 0, all = #all }
    for _, o in ipairs(all) do
      if o.status and o.status.id and polling(o) then
        c.polling = c.polling + 1
      end
    end
    counts[k] = c
  end
  return c.polling, c.all
end


-- obj's resource from a list shared with the other polls of its namespace (ks.poll), or
-- nil: get it alone (def has no list, obj is not polling, too few are, or none to trust).
function _M.polled(def, cloud, obj)
  if not def.list or not polling(obj) then
    return nil
  end
  local n, all = count_polling(def.kind, obj.metadata.namespace)
  if n < 2 or n * 10 < all then
    return nil
  end
  return poll.get(def.kind, cloud, obj.status.id, def.list, 1)
end


-- Is o's condition Available True? (ks.resource.is_available)
function _M.is_available(o)
  for _, c in ipairs((o.status and o.status.conditions) or {}) do
    if c.type == "Available" then
      return c.status == "True"
    end
  end
  return false
end


-- The slots of def.max_creating: by kind and namespace.
local function slot_key(def, obj)
  return def.kind .. "\0" .. obj.metadata.namespace
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
    local o = kube.get(res(def.kind), ns, name)
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
  return { group = GROUP, version = VERSION, kind = def.kind, map = function(o)
    local ns = o.metadata.namespace
    local keys = {}
    for i, name in ipairs(slots.next(def.kind .. "\0" .. ns)) do
      keys[i] = ns .. "/" .. name
    end
    return keys
  end }
end


return _M
