-- ks/recovery/addresses.lua: the fixed IPs of the ports Nova made for a broken server,
-- asked for again by the server a Recreate makes (ks.recovery.server): Nova deletes those
-- ports with their server and cannot hand them over, so the addresses are what can be kept
-- (a new port, a new MAC; for the same MAC too, a Port object). Kept in
-- status.recovery.addresses for a create in a later reconcile.
local json = require "ks.core.json"

local type = type
local ipairs = ipairs
local tostring = tostring
local concat = table.concat


local _M = {}


-- The fixed IPs Nova gave a server on the entries of deps.networks that name a Network
-- and no fixed_ip (Nova made those ports, and deletes them with the server), by entry ("" for
-- none), from Nova's addresses (by network name; an IPv4 one first); nil if there is none.
function _M.kept(addresses, deps)
  if type(addresses) ~= "table" then
    return nil
  end
  local out, any, used = {}, false, {}
  for i, n in ipairs(deps.networks or {}) do
    out[i] = ""
    local list = n.uuid and not n.fixed_ip and n.name and addresses[n.name]
    local best
    for _, a in ipairs(type(list) == "table" and list or {}) do
      if type(a) == "table" and type(a.addr) == "string" and not used[a.addr]
          and a["OS-EXT-IPS:type"] ~= "floating"
          and (not best or (a.version == 4 and best.version ~= 4)) then
        best = a
      end
    end
    if best then
      used[best.addr], out[i], any = true, best.addr, true
    end
  end
  return any and out or nil
end


-- Nova's addresses of obj's server when it was last seen (status.resource).
function _M.observed(obj)
  local r = obj.status and obj.status.resource
  return type(r) == "table" and r.addresses or nil
end


-- The new server of this recovery asks for the addresses ips (from kept(), or nil): in
-- deps for the create, and in status.recovery.addresses for a create in a later reconcile.
-- An address taken since is said in a Warning Event.
function _M.keep(deps, ctx, ips)
  deps.keep = ips
  if ctx.log then
    local names = {}
    for i, n in ipairs(deps.networks or {}) do
      names[i] = tostring(n.name)
    end
    ctx.log.info("recreate addresses", { addresses = ips and concat(ips, ",") or "none",
                                          networks = concat(names, ",") })
  end
  if ctx.recovery then
    ctx.recovery.addresses = ips and json.array(ips) or json.null
  end
  deps.on_lost = function(msg)
    ctx.event("Warning", "AddressLost", "the new server could not have the broken one's "
      .. "fixed IPs: " .. msg .. "; it has what Neutron gave it")
  end
end


-- Nova's networks for the create of a server: deps.networks with, on a recreate, the
-- addresses kept (deps.keep) asked for again.
function _M.networks(deps)
  local out = {}
  for i, n in ipairs(deps.networks or {}) do
    local ip = n.fixed_ip or (deps.keep and deps.keep[i])
    out[i] = { uuid = n.uuid, port = n.port, fixed_ip = ip ~= "" and ip or nil }
  end
  return out
end


-- Did the create fail, err, because an address kept is taken? Then it is said, and
-- forgotten (deps.keep), for the create to be tried again without.
function _M.taken(deps, err)
  local msg = type(err) == "table" and tostring(err.message or "") or ""
  if not deps.keep or type(err) ~= "table" or not (err.status == 400 or err.status == 409)
      or not (msg:find("already in use", 1, true) or msg:find("already allocated", 1, true)) then
    return false
  end
  deps.keep = nil
  if deps.on_lost then
    deps.on_lost(msg)
  end
  return true
end


return _M
