-- ks/recovery/server.lua: spec.recoveryPolicy for the Instance kind: what is done about a
-- Nova server found in ERROR, shut off, or deleted behind KupenStack's back (the limit
-- and its backoff: ks.recovery.limit). Hooks for ks.resource (def.recover, def.gone) and
-- finish(), which the plugin's reconcile passes its result through.
--
-- Recreate keeps the server's identity: the ports of the spec's Port objects are taken
-- off the broken server (in Neutron: Nova refuses to detach from a server in ERROR) and
-- given to the new one, so it has the same fixed IPs and MACs, and a floating IP on such
-- a port follows; the new server has the same name, key pair, security groups, metadata
-- and UID tag (the plugin's create). The broken server is deleted only once the new one
-- exists, tagged from its create on: a crash at any step leaves a server that the next
-- reconcile adopts (a tagged server other than status.id's, while status.id's is broken or
-- going, is the new one: it is adopted and the broken one deleted, counted once). Crash
-- points (KUPENSTACK_CRASH_AT, Instance:POINT): recovery-found, recovery-detached,
-- recovery-posted, recovery-deleted; the host's own "status" follows.
local fault = require "ks.core.fault"
local json = require "ks.core.json"
local time = require "ks.core.time"
local nova = require "ks.openstack.nova"
local openstack = require "ks.openstack"
local resource = require "ks.resource"
local addresses = require "ks.recovery.addresses"
local limit = require "ks.recovery.limit"
local poll = require "ks.resource.poll"

local type = type
local ipairs = ipairs
local tostring = tostring
local ceil = math.ceil
local concat = table.concat
local floor = math.floor
local max = math.max
local min = math.min


local _M = {}


local function value(v)
  if v == json.null or v == "" then
    return nil
  end
  return v
end


local function cond(ctype, status, reason, message)
  return { type = ctype, status = status, reason = reason, message = message }
end


local function held(reason, message, requeue)
  return { conditions = { cond("Available", "False", reason, message),
                          cond("Progressing", "False", reason, message) },
           requeue_after = requeue }
end


local function condition(obj, ctype)
  for _, c in ipairs((obj.status and obj.status.conditions) or {}) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end


-- Was obj's Available condition last set for this generation with one of reasons
-- (a set)? A spec change since makes what follows a change, not a failure.
local function was(obj, reasons)
  local c = condition(obj, "Available")
  return c ~= nil and c.observedGeneration == obj.metadata.generation
    and reasons[c.status == "True" and "True" or c.reason] == true
end


-- Was the server last seen ACTIVE at this generation? A notification can make the host
-- look while Nova powers it off (ACTIVE, task_state powering-off: Available False,
-- progressing), so the SHUTOFF seen next is not after an Available of its own; it was
-- not asked for all the same (the host stops a server only for spec.powerState Shutoff,
-- a spec change).
local function was_active(obj)
  local c = condition(obj, "Available")
  local seen = obj.status and obj.status.resource
  return c ~= nil and c.observedGeneration == obj.metadata.generation
    and type(seen) == "table" and seen.status == "ACTIVE"
end


local function fault_of(cur)
  return type(cur.fault) == "table" and value(cur.fault.message) or nil
end


-- decide() for obj now: "go" (ctx.recovery holds the started record), or nil and the
-- result to return (waiting out the backoff, or the limit reached).
local function gate(obj, ctx, pol, action, reason, what, fmsg)
  local ann = obj.metadata.annotations or {}
  local now = time.now()
  local verdict, rec, extra = limit.decide(obj.status and obj.status.recovery, pol, now,
    obj.metadata.generation, ann[limit.RESET_ANNOTATION])
  if verdict == "limit" then
    ctx.recovery = rec
    local msg = what .. ": " .. pol.maxRecoveries .. " recoveries within the window of "
      .. pol.window .. " s were made already; no more tries (change the spec, or the "
      .. "annotation " .. limit.RESET_ANNOTATION .. ", to try again)"
    if extra then
      ctx.event("Warning", "RecoveryLimit", msg)
    end
    return nil, held("RecoveryLimit", msg)
  end
  if verdict == "wait" then
    ctx.recovery = rec
    local secs = ceil(extra)
    return nil, held("Recovering", what .. ": the next recovery (" .. action .. ") in "
      .. secs .. " s (backoff)", secs)
  end
  rec = limit.start(rec, action, reason, fmsg, now)
  ctx.recovery = rec
  ctx.event("Normal", "RecoveryStarted", what .. ": " .. action .. " (recovery " .. rec.count
    .. ", " .. rec.recent .. " of " .. pol.maxRecoveries .. " in the window)")
  return "go"
end


-- Is server s on its way out: being deleted (task_state deleting: its volumes are
-- detached then, before it is gone), or deleted already (Nova's status DELETED, vm_state
-- deleted: until its row goes, a GET and a list still show it so)?
local function going(s)
  return s.status == "DELETED" or value(s["OS-EXT-STS:task_state"]) == "deleting"
end


-- A server on its way out is looked at again after a quarter of the time Nova has been at
-- it (since its `updated`), 3 s at first and a minute at most; past DELETE_STUCK seconds
-- it is reported stuck (reason DeleteStuck, a Warning Event once): a server whose compute
-- host is down stays `deleting` until an operator acts, and is not asked about every 3 s.
_M.DELETE_STUCK = 600
local DELETE_AGAIN_MAX = 60

local function on_its_way_out(cur, obj, ctx)
  local task = value(cur["OS-EXT-STS:task_state"])
  local since = limit.parse_time(value(cur.updated))
  local secs = since and max(0, floor(time.now() - since)) or 0
  local again = min(DELETE_AGAIN_MAX, max(3, ceil(secs / 4)))
  local msg = "server " .. cur.id .. " is being deleted (Nova: status " .. tostring(cur.status)
    .. ", task_state " .. tostring(task) .. ", for " .. secs .. " s); looking again in "
    .. again .. " s"
  if secs < _M.DELETE_STUCK then
    return held("Deleting", msg, again)
  end
  msg = msg .. "; Nova has not finished deleting it in " .. floor(secs / 60) .. " min (is "
    .. "nova-compute on " .. tostring(value(cur["OS-EXT-SRV-ATTR:host"]) or "its host")
    .. " up?)"
  if not was(obj, { DeleteStuck = true }) then
    ctx.event("Warning", "DeleteStuck", msg)
  end
  return held("DeleteStuck", msg, again)
end


-- Another server with obj's UID tag than id, neither broken nor being deleted: the new
-- server of a recreate that a crash interrupted; nil if there is none. Other broken ones
-- with the tag (a recreate whose new server failed too) are ours and deleted.
local function sibling(cloud, obj, id)
  local items, err = nova.servers(cloud, { tags = resource.uid_tag(obj) })
  if not items then
    return nil, err
  end
  local found
  for _, s in ipairs(items) do
    if s.id ~= id and not going(s) then
      if s.status ~= "ERROR" then
        found = found or s
      else
        poll.wrote("Instance", s.id)
        local _, derr = nova.server_delete(cloud, s.id)
        if derr and not openstack.is_not_found(derr) then
          return nil, derr
        end
      end
    end
  end
  return found
end


-- The broken server old goes, now that new (tagged) exists.
local function replace(cloud, old, new, ctx)
  if not going(old) then
    poll.wrote("Instance", old.id)
    local _, err = nova.server_delete(cloud, old.id)
    if err and not openstack.is_not_found(err) then
      return nil, resource.failed(err)
    end
  end
  fault.point("Instance", "recovery-deleted")
  ctx.event("Normal", "Recreated", "server " .. old.id .. " replaced by server " .. new.id)
  return new
end


-- Take the ports of the spec's Port objects off old (Neutron: device_id cleared), so
-- that the new server can have them.
local function free_ports(cloud, old, deps)
  for _, n in ipairs(deps.networks or {}) do
    if n.port then
      local body, err = cloud:request("network", "GET", "/ports/" .. n.port)
      if not body then
        return nil, err
      end
      if body.port and body.port.device_id == old.id then
        local done, uerr = cloud:request("network", "PUT", "/ports/" .. n.port,
          { body = { port = { device_id = "", device_owner = "" } } })
        if done == nil then
          return nil, uerr
        end
      end
    end
  end
  return true
end


-- What of the broken server the new one needs and cannot have while it exists: a fixed
-- IP asked of Nova on a Network, or the boot volume (Nova attaches a volume to one server,
-- and detaches none from a server in ERROR, nor a root volume from any). For such an
-- Instance the broken server goes first; nil when the new one can be made beside it.
local function wanted_by_new(obj, deps)
  if deps.volume then
    return "its boot volume " .. deps.volume
  end
  if deps.keep then
    local ips = {}
    for _, ip in ipairs(deps.keep) do
      if ip ~= "" then
        ips[#ips + 1] = ip
      end
    end
    return "its fixed IPs " .. concat(ips, ", ") .. " (on the ports Nova made for it, which go "
      .. "with it)"
  end
  for _, n in ipairs((obj.spec and obj.spec.networks) or {}) do
    if n.networkRef and n.fixed_ip then
      return "its fixed IP " .. n.fixed_ip
    end
  end
  return nil
end


local function recreate(def, cloud, old, obj, ctx, deps, why)
  addresses.keep(deps, ctx, addresses.kept(old.addresses, deps)
    or addresses.kept(addresses.observed(obj), deps))
  local wanted = wanted_by_new(obj, deps)
  if wanted then
    poll.wrote("Instance", old.id)
    local _, err = nova.server_delete(cloud, old.id)
    if err and not openstack.is_not_found(err) then
      return nil, resource.failed(err)
    end
    fault.point("Instance", "recovery-deleted")
    local res = held("Recovering", (why or "") .. "server " .. old.id .. " is deleted first: "
      .. wanted .. " is wanted by the new one", 3)
    res.status = { id = old.id }
    return nil, res
  end
  local ok, err = free_ports(cloud, old, deps)
  if not ok then
    return nil, resource.failed(err)
  end
  fault.point("Instance", "recovery-detached")
  local new
  new, err = def.create(cloud, obj, deps)
  if not new then
    return nil, resource.failed(err)
  end
  poll.wrote("Instance", new.id)
  fault.point("Instance", "recovery-posted")
  return replace(cloud, old, new, ctx)
end


-- Rebuild in place from the Image; a server booted from a Volume has none (Nova rebuilds
-- a volume-backed server only from the image it has, and ours has no image): it is
-- recreated on the same volume instead, recorded as a Recreate (status.recovery.lastAction)
-- and said in the Event and the condition's message.
local function rebuild(def, cloud, cur, obj, ctx, deps)
  local image = deps.image or (type(cur.image) == "table" and cur.image.id)
  if not image then
    local why = "onError Rebuild: server " .. cur.id .. " boots from a volume, which Nova "
      .. "cannot rebuild from an image: recreating it on the same volume instead; "
    ctx.recovery.lastAction = "Recreate"
    ctx.event("Normal", "RecoveryStarted", why:sub(1, -3))
    return recreate(def, cloud, cur, obj, ctx, deps, why)
  end
  poll.wrote("Instance", cur.id)
  local _, err = nova.server_action(cloud, cur.id, "rebuild", { imageRef = image })
  if err then
    return nil, resource.failed(err)
  end
  local new
  new, err = nova.server_get(cloud, cur.id)
  if not new then
    return nil, resource.failed(err)
  end
  return new
end


-- def.recover for ks.resource: cur is status.id's server, found; returns the server to go
-- on with (cur, or a new one), or nil and the result to return.
function _M.recover(def)
  return function(cloud, cur, obj, ctx, deps)
    local pol, perr = limit.policy(obj.spec)
    if not pol then
      return nil, resource.terminal(perr)
    end
    local task = value(cur["OS-EXT-STS:task_state"])
    if cur.status == "ERROR" or going(cur) then
      local sib, err = sibling(cloud, obj, cur.id)
      if err then
        return nil, resource.failed(err)
      end
      if sib then
        -- A recreate that was interrupted: finish it, counted already.
        return replace(cloud, cur, sib, ctx)
      end
    end
    if going(cur) then
      -- On its way out: nothing of it to judge (its volumes and ports are let go early:
      -- it boots from no volume any more, and has no address); def.gone decides once the
      -- GET says 404.
      return nil, on_its_way_out(cur, obj, ctx)
    end
    if cur.status == "ERROR" and not task and pol.onError ~= "None" then
      local fmsg = fault_of(cur)
      local what = "server " .. cur.id .. " is in ERROR" .. (fmsg and (" (" .. fmsg .. ")") or "")
      local go, early = gate(obj, ctx, pol, pol.onError, "Error", what, fmsg)
      if not go then
        return nil, early
      end
      fault.point("Instance", "recovery-found")
      if pol.onError == "Rebuild" then
        return rebuild(def, cloud, cur, obj, ctx, deps)
      end
      return recreate(def, cloud, cur, obj, ctx, deps)
    end
    local want = (obj.spec and obj.spec.powerState) or "Running"
    if cur.status == "SHUTOFF" and want == "Running" and not task
        and (was(obj, { True = true, Shutoff = true, Recovering = true, RecoveryLimit = true })
             or was_active(obj)) then
      local what = "server " .. cur.id .. " was found SHUTOFF (spec.powerState: Running)"
      if pol.onShutoff == "None" then
        if not was(obj, { Shutoff = true }) then
          ctx.event("Warning", "Shutoff", what .. "; recoveryPolicy.onShutoff None: not started")
        end
        return nil, held("Shutoff", what .. "; recoveryPolicy.onShutoff None: not started")
      end
      local go, early = gate(obj, ctx, pol, "Start", "Shutoff", what)
      if not go then
        return nil, early
      end
      fault.point("Instance", "recovery-found")
    end
    return cur
  end
end


-- def.gone for ks.resource: status.id's server no longer exists. Returns a server to
-- adopt (ours, made by a recovery), or nil and a result to return, or nothing: make it
-- again.
function _M.gone(def)
  return function(cloud, obj, ctx, deps)
    deps = deps or {}
    local own, err = def.find_own(cloud, obj)
    if err then
      return nil, resource.failed(err)
    end
    if own then
      ctx.event("Normal", "Adopted", "found server " .. own.id .. " created for this object "
        .. "(a recovery); adopting it")
      return own
    end
    local rec = obj.status.recovery
    if rec and rec.state == "Running" and rec.lastAction == "Recreate"
        and rec.lastReason == "Error" then
      -- a recreate that deleted the broken server first: go on with it, with the addresses
      -- it kept
      local ips = type(rec.addresses) == "table" and #rec.addresses > 0 and rec.addresses or nil
      addresses.keep(deps, ctx, ips)
      return nil
    end
    local pol, perr = limit.policy(obj.spec)
    if not pol then
      return nil, resource.terminal(perr)
    end
    local what = "server " .. tostring(obj.status.id) .. " was deleted outside KupenStack"
    if pol.onDeleted == "None" then
      local msg = what .. "; recoveryPolicy.onDeleted None: not made again"
      if not was(obj, { Deleted = true }) then
        ctx.event("Warning", "Deleted", msg)
      end
      local res = held("Deleted", msg)
      res.status = { id = obj.status.id }
      return nil, res
    end
    local go, early = gate(obj, ctx, pol, "Recreate", "Deleted", what)
    if not go then
      early.status = { id = obj.status.id }
      return nil, early
    end
    -- Nova deleted the ports it made with the server: their addresses are free again
    addresses.keep(deps, ctx, addresses.kept(addresses.observed(obj), deps))
    return nil
  end
end


-- The plugin's result res passed through: status.recovery written, reason Recovering
-- while a recovery runs, an Event once it is over (the server Available again).
function _M.finish(res, obj, ctx)
  local rec = ctx.recovery or (obj.status and obj.status.recovery)
  if type(res) ~= "table" or not rec then
    return res
  end
  res.status = res.status or {}
  if rec.state == "Running" then
    local avail
    for _, c in ipairs(res.conditions or {}) do
      if c.type == "Available" then
        avail = c
      end
    end
    if avail and avail.status == "True" then
      rec.state = "Done"
      ctx.event("Normal", "Recovered", "recovered by " .. tostring(rec.lastAction) .. ": "
        .. tostring(avail.message))
    elseif res.conditions and not res.error then
      for _, c in ipairs(res.conditions) do
        if c.reason == "Progressing" or c.reason == "Waiting" then
          c.reason = "Recovering"
        end
      end
    end
  end
  res.status.recovery = rec
  return res
end


return _M
