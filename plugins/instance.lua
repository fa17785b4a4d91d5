-- plugins/instance.lua: kupenstack.io/v1alpha1 Instance -> a Nova server.
--
-- The server is booted from the Image (or the Volume) and the Flavor the spec names, with
-- the KeyPair, on the Networks (Nova makes the ports) or Ports, in the SecurityGroups; all
-- of them are objects of the namespace and are waited for until they are Available. It
-- carries our UID tag from its create on (microversion 2.52+), so a create whose answer
-- was lost is found again. Name, description, metadata and tags change in place;
-- powerState is kept with os-start / os-stop. BUILD is polled (many servers at once with
-- one list of the project's servers in BUILD: ks.resource's def.list); the status
-- carries powerState, and the addresses in status.resource. At most max_building servers
-- of a namespace (a setting, default 8) are being built at once; the other Instances wait
-- their turn, so that a hundred applied together do not swamp Nova and Neutron.
--
-- spec.recoveryPolicy (ks.recovery.server): a server in ERROR is rebuilt or recreated, one
-- found SHUTOFF while powerState is Running is started, one deleted behind our back is
-- made again, or each is only reported; at most maxRecoveries in a window, with backoff.
local json = require "ks.core.json"
local resource = require "ks.resource"
local base64 = require "ks.base64"
local nova = require "ks.openstack.nova"
local tags = require "ks.resource.tags"
local fields_of = require "ks.resource.fields"
local poll = require "ks.resource.poll"
local addresses = require "ks.recovery.addresses"
local recovery = require "ks.recovery.server"
local notifications = require "ks.recovery.notifications"
local time = require "ks.core.time"

local ipairs = ipairs
local random = math.random
local tostring = tostring
local concat = table.concat
local spec_of = fields_of.spec_of
local os_name = fields_of.os_name
local reread = fields_of.reread


local function value(v)
  return fields_of.value(v, true)
end


local DEPENDS = { "Flavor", "Image", "KeyPair", "Network", "Port", "SecurityGroup", "Volume" }

-- Server states on the way somewhere: look again soon.
local TRANSITIONAL = {
  BUILD = true, REBUILD = true, REBOOT = true, HARD_REBOOT = true, MIGRATING = true,
  RESIZE = true, REVERT_RESIZE = true, PASSWORD = true,
}


-- The references: {flavor, flavor_name, image, volume, keypair, security_groups,
-- networks}, or nil and what is awaited. Before the server exists each must be Available;
-- after, a missing one no longer holds the server up (deps.missing says which).
local function resolve(obj)
  local spec = obj.spec or {}
  local deps = { security_groups = {}, networks = {} }
  local ref, done = resource.resolver(obj)
  if spec.flavorRef then
    local id, o = ref("Flavor", spec.flavorRef.name)
    deps.flavor = id
    deps.flavor_name = o and o.status.resource and o.status.resource.name
  end
  if spec.imageRef then
    deps.image = ref("Image", spec.imageRef.name)
  end
  if spec.bootVolumeRef then
    deps.volume = ref("Volume", spec.bootVolumeRef.name)
  end
  if spec.keypairRef then
    deps.keypair = ref("KeyPair", spec.keypairRef.name)
  end
  for _, sg in ipairs(spec.securityGroupRefs or {}) do
    local id = ref("SecurityGroup", sg.name)
    deps.security_groups[#deps.security_groups + 1] = { name = id }
  end
  for _, n in ipairs(spec.networks or {}) do
    if n.portRef then
      deps.networks[#deps.networks + 1] = { port = ref("Port", n.portRef.name) }
    elseif n.networkRef then
      local id, o = ref("Network", n.networkRef.name)
      deps.networks[#deps.networks + 1] = { uuid = id, fixed_ip = n.fixed_ip,
        name = o and o.status.resource and o.status.resource.name }
    end
  end
  return done(deps)
end


-- Ours, by the UID tag; while a recovery has two, the one not broken nor going. One
-- DELETED (Nova lists it so until its row goes) is none.
local function find_own(cloud, obj)
  local items, err = nova.servers(cloud, { tags = resource.uid_tag(obj) })
  if not items then
    return nil, err
  end
  local broken
  for _, s in ipairs(items) do
    if s.status ~= "DELETED" then
      if s.status ~= "ERROR" and value(s["OS-EXT-STS:task_state"]) ~= "deleting" then
        return s
      end
      broken = broken or s
    end
  end
  return broken
end


local function find(cloud, filter)
  local q = {}
  if filter.name then
    q.name = "^" .. filter.name:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?%{%}|\\]", "\\%0") .. "$"
  end
  if filter.tags then
    q.tags = concat(filter.tags, ",")
  end
  local items, err = nova.servers(cloud, q)
  if not items then
    return nil, err
  end
  return fields_of.matching(items, filter)
end


local function create(cloud, obj, deps)
  if deps.missing then
    return nil, { kind = "transient", backoff = 10, message = "cannot create the server "
      .. "again: " .. deps.missing }
  end
  local spec, r = spec_of(obj)
  local server = {
    name = os_name(obj), flavorRef = deps.flavor, imageRef = deps.image,
    key_name = deps.keypair, networks = json.array(addresses.networks(deps)),
    metadata = r.metadata, availability_zone = r.availability_zone,
    description = r.description, tags = json.array(tags.initial(obj)),
  }
  if #deps.security_groups > 0 then
    server.security_groups = deps.security_groups
  end
  if r.user_data then
    server.user_data = base64.encode(r.user_data)
  end
  if deps.volume then
    server.block_device_mapping_v2 = { { boot_index = 0, uuid = deps.volume,
      source_type = "volume", destination_type = "volume", delete_on_termination = false } }
  end
  if not spec.flavorRef or not (deps.image or deps.volume) or #deps.networks == 0 then
    return nil, { kind = "invalid", message = "an Instance needs flavorRef, networks and "
      .. "imageRef or bootVolumeRef (or spec.import)" }
  end
  local hints = r.scheduler_hints -- an InstanceSet's placement: its server group
  if hints and hints.group then
    local gerr = nova.server_group_check(cloud, hints.group)
    if gerr then
      return nil, gerr
    end
  end
  local id, err = nova.server_create(cloud, server, hints)
  if not id and addresses.taken(deps, err) then
    -- A recreate asked for the broken server's fixed IPs, and one is taken since: the
    -- server is made with what Neutron gives (said in a Warning Event).
    server.networks = json.array(addresses.networks(deps))
    id, err = nova.server_create(cloud, server, hints)
  end
  if not id then
    -- A network with no subnet yet is not a mistake in the spec: its Subnet may be on its
    -- way (applied with it). Nova says 400; look again later instead of giving up.
    local msg = type(err) == "table" and tostring(err.message or "") or ""
    if msg:find("requires a subnet in order to boot instances on", 1, true) then
      return nil, { kind = "transient", backoff = 10, message = msg .. " (waiting for it)" }
    end
    return nil, err
  end
  return nova.server_get(cloud, id)
end


-- Polling, for a failure that no notification tells of: an Available Instance is looked
-- at again every poll_interval seconds (a setting), all those of a namespace at the same
-- moment (the next multiple of the interval), so that their looks share one list of the
-- namespace's servers (ks.poll) instead of a GET each: its cost grows with namespaces,
-- not with servers. The resync, which looks at them all at once too, shares lists the
-- same way, with poll_interval 0 as well. A look at another moment (a notification, a
-- change) finds the list older than LIST_TTL, or the server changed since (poll.changed),
-- and asks afresh.
local LIST_TTL = 5
local poll_every = 60 -- ctx.config.poll_interval, set at each reconcile


local function all_servers(cloud)
  return nova.servers(cloud, {})
end


-- Does the list's cur say something else than the last look (status.resource) did? A
-- list is shared for LIST_TTL and may be older than that look (which a GET made: a server
-- seen ACTIVE just now can still be BUILD in it); a GET tells. A real change costs one
-- GET more.
local function stale(cur, obj)
  local seen = obj.status and obj.status.resource
  if type(seen) ~= "table" then
    return false
  end
  return cur.status ~= seen.status
    or value(cur["OS-EXT-STS:task_state"]) ~= value(seen["OS-EXT-STS:task_state"])
    or (type(cur.updated) == "string" and type(seen.updated) == "string"
        and cur.updated < seen.updated)
end


local function get(cloud, id, obj)
  if obj and not obj.metadata.deletionTimestamp and resource.is_available(obj) then
    local cur = poll.get("Instance", cloud, id, all_servers, LIST_TTL)
    if cur and not stale(cur, obj) then
      return cur
    end
  end
  return nova.server_get(cloud, id)
end


-- Seconds until the next multiple of poll_every (and a little, so the namespace's looks
-- are not all at one instant).
local function next_poll()
  return poll_every - (time.now() % poll_every) + random() * 0.5
end


-- The project's servers in BUILD, for the polls of those being built (ks.resource's
-- def.list): one list a second however many are building, where a GET each would cost
-- Nova two Neutron queries per server per poll.
local function building(cloud)
  return nova.servers(cloud, { status = "BUILD" })
end


-- os-start / os-stop to match spec.powerState; whether an action was asked for.
local function power(cloud, cur, obj)
  local want = (obj.spec and obj.spec.powerState) or "Running"
  if value(cur["OS-EXT-STS:task_state"]) then
    return false
  end
  local action
  if want == "Running" and cur.status == "SHUTOFF" then
    action = "os-start"
  elseif want == "Shutoff" and cur.status == "ACTIVE" then
    action = "os-stop"
  end
  if not action then
    return false
  end
  local _, err = nova.server_action(cloud, cur.id, action)
  if err then
    return nil, err
  end
  return true
end


local function update(cloud, cur, obj)
  local _, r = spec_of(obj)
  local changed = false
  local fields, n = {}, 0
  local name = os_name(obj)
  if name and name ~= cur.name then
    fields.name, n = name, n + 1
  end
  if r.description and r.description ~= value(cur.description) then
    fields.description, n = r.description, n + 1
  end
  if n > 0 then
    local _, err = nova.server_update(cloud, cur.id, fields)
    if err then
      return nil, err
    end
    changed = true
  end
  if r.metadata and not resource.equal(r.metadata, cur.metadata or {}) then
    local _, err = nova.server_set_metadata(cloud, cur.id, r.metadata)
    if err then
      return nil, err
    end
    changed = true
  end
  local want = tags.wanted(obj, cur.tags)
  if want then
    local _, err = nova.server_set_tags(cloud, cur.id, want)
    if err then
      return nil, err
    end
    changed = true
  end
  local acted, err = power(cloud, cur, obj)
  if acted == nil then
    return nil, err
  end
  if changed or acted then
    return reread(nova.server_get, cloud, cur.id)
  end
  return cur, false
end


local function attached_volumes(cur)
  local ids = {}
  for _, v in ipairs(cur["os-extended-volumes:volumes_attached"] or {}) do
    ids[#ids + 1] = v.id
  end
  return ids
end


-- What the server was made with: a change is refused (InvalidConfiguration).
local IMMUTABLE = {
  { "spec.imageRef", dep = "image", is = "the server was booted from image",
    have = function(cur) return type(cur.image) == "table" and cur.image.id or nil end },
  { "spec.flavorRef", dep = "flavor_name", is = "the server has flavor",
    note = "resizing is not supported yet",
    have = function(cur) return type(cur.flavor) == "table" and cur.flavor.original_name or nil end },
  { "spec.keypairRef", dep = "keypair", have = "key_name", is = "the server has key pair",
    unset_differs = true },
  { "spec.bootVolumeRef", dep = "volume", same = function(want, have) return resource.has(have, want) end,
    have = function(cur) return cur.status ~= "BUILD" and attached_volumes(cur) or nil end,
    is = function(_, want) return "the server does not boot from volume " .. want end },
  { "spec.resource.availability_zone", have = "OS-EXT-AZ:availability_zone",
    is = "the server is in" },
}


local function observe(cur, obj)
  local fields = fields_of.present(cur, { "name", "status", "addresses", "key_name", "metadata",
    "tags", "security_groups", "created", "updated", "OS-EXT-STS:vm_state",
    "OS-EXT-STS:task_state", "OS-EXT-STS:power_state", "OS-EXT-AZ:availability_zone" }, true)
  fields.description = value(cur.description)
  if type(cur.image) == "table" then
    fields.image = { id = cur.image.id }
  end
  if type(cur.flavor) == "table" then
    fields.flavor = { original_name = cur.flavor.original_name }
  end
  if type(cur.fault) == "table" then
    fields.fault = { code = cur.fault.code, message = cur.fault.message }
  end
  local want = (obj.spec and obj.spec.powerState) or "Running"
  local task = value(cur["OS-EXT-STS:task_state"])
  local msg = "server " .. cur.id .. " is " .. tostring(cur.status)
    .. (task and (" (" .. task .. ")") or "")
  if task == "deleting" or cur.status == "DELETED" then
    -- Nova takes the addresses off a server it deletes: those last seen stay in status,
    -- for a recreate after the deletion to ask for again (ks.recovery.server)
    local old = obj and obj.status and obj.status.resource
    if type(old) == "table" and type(old.addresses) == "table" then
      fields.addresses = old.addresses
    end
  end
  if task == "deleting" then
    return fields, "progressing", msg
  end
  if cur.status == "ERROR" then
    local fault = type(cur.fault) == "table" and cur.fault.message
    return fields, "error", msg .. (fault and (": " .. tostring(fault)) or "")
  end
  if TRANSITIONAL[cur.status] or task then
    return fields, "progressing", msg
  end
  if (cur.status == "ACTIVE" and want == "Running") or (cur.status == "SHUTOFF" and want == "Shutoff") then
    return fields, "available", msg
  end
  if cur.status == "ACTIVE" or cur.status == "SHUTOFF" then
    return fields, "progressing", msg .. ", to be " .. want
  end
  return fields, "error", msg .. ": KupenStack keeps a server ACTIVE or SHUTOFF "
    .. "(spec.powerState) and does not act on this state"
end


local def = { create = create, find_own = find_own }
return resource.plugin {
  kind = "Instance", depends = DEPENDS, poll = 2, concurrency = 8, async_delete = true,
  config_schema = {
    max_building = { type = "number", default = 8,
                     description = "servers of a namespace being built at once (0: no limit)" },
    poll_interval = { type = "number", default = 60,
                      description = "seconds between looks at an Available Instance's server "
                        .. "(one list of the namespace's servers); 0: only at the resync" },
  },
  configure = function(config) poll_every = config.poll_interval or 60 end,
  max_creating = function(ctx) return (ctx.config or {}).max_building end,
  recover = recovery.recover(def), gone = recovery.gone(def),
  consumes = { notifications.consumer(resource.GROUP, resource.VERSION, "Instance") },
  get = get, list = building, find_own = find_own, find = find, resolve = resolve,
  create = create, update = update, immutable = IMMUTABLE, observe = fields_of.observer(observe),
  delete = function(cloud, cur) return nova.server_delete(cloud, cur.id) end,
  deleting = function(cur)
    return cur["OS-EXT-STS:task_state"] == "deleting" or cur.status == "DELETED"
      or cur.status == "SOFT_DELETED"
  end,
  -- Besides status.resource, the power state, named from Nova's number.
  status = function(st)
    st.powerState = nova.POWER_STATES[st.resource["OS-EXT-STS:power_state"]] or "Unknown"
  end,
  finish = function(res, obj, ctx)
    -- Available, or held by the recovery policy (Shutoff, Deleted, RecoveryLimit): looked
    -- at again at the next poll (a held one with a GET of its own).
    if poll_every > 0 and res and not res.requeue_after and not res.error then
      res.requeue_after = next_poll()
    end
    return recovery.finish(res, obj, ctx)
  end,
}
