-- ks/recovery/notifications.lua: Nova's versioned notifications, as a plugin's
-- 'consumes' entry (host: plugin/consume.h) for the Instance kind: a notification about
-- a server enqueues the Instance whose status.id names it, found through the cache's
-- index on status.id (kube.list's status_id), not a scan; so that a server broken,
-- stopped or deleted behind KupenStack's back is looked at now, not at the next poll.
-- Unrelated messages (other event types, other projects' servers, what is not JSON)
-- map to nothing.
local kube = require "ks.core.kube"
local json = require "ks.core.json"
local poll = require "ks.resource.poll"

local type = type
local pcall = pcall
local ipairs = ipairs


local _M = {}

_M.EXCHANGE = "nova"
_M.TOPIC = "versioned_notifications.info"

-- The event types that tell of a server's state changing (instance.update carries every
-- vm_state change, `openstack server set --state error` included).
local EVENTS = {
  ["instance.update"] = true, ["instance.delete.end"] = true,
  ["instance.power_off.end"] = true, ["instance.shutdown.end"] = true,
  ["instance.soft_delete.end"] = true, ["instance.rebuild.error"] = true,
  ["instance.create.error"] = true,
}


-- The oslo.messaging envelope's message: { event_type =, payload = }, or nil.
function _M.decode(body)
  if type(body) ~= "table" then
    return nil
  end
  local inner = body["oslo.message"]
  if type(inner) == "string" then
    local ok, msg = pcall(json.decode, inner)
    return ok and type(msg) == "table" and msg or nil
  end
  return body
end


-- The server UUID a Nova notification is about, or nil.
function _M.server_id(msg)
  if not msg or not EVENTS[msg.event_type] then
    return nil
  end
  local p = type(msg.payload) == "table" and msg.payload["nova_object.data"]
  return type(p) == "table" and type(p.uuid) == "string" and p.uuid or nil
end


-- The 'consumes' entry for kind (of group/version): map(body) gives the keys of the
-- objects whose status.id is the server the notification names.
function _M.consumer(group, version, kind)
  local res = { group = group, version = version, kind = kind }
  return {
    exchange = _M.EXCHANGE, topic = _M.TOPIC,
    map = function(body)
      local id = _M.server_id(_M.decode(body))
      local keys = {}
      if id then
        -- The server changed after any list of it this state holds: the reconcile this
        -- enqueues must GET it, not read a list from before the change (a list taken as
        -- the power-off began still said ACTIVE).
        poll.changed(kind, id)
        for _, o in ipairs(kube.list(res, { status_id = id })) do
          keys[#keys + 1] = o.metadata.namespace .. "/" .. o.metadata.name
        end
      end
      return keys
    end,
  }
end


return _M
