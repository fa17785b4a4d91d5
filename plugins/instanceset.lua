-- plugins/instanceset.lua: kupenstack.io/v1alpha1 InstanceSet -> spec.replicas Instances
-- made from spec.template, as a ReplicaSet keeps pods.
--
-- Members are Instances named <set>-<5 characters> (generateName), in the set's
-- namespace, with the set as their controller (an ownerReference with controller and
-- blockOwnerDeletion: the API server's garbage collector deletes them with the set, and
-- `kubectl delete --cascade=orphan` leaves them), labelled with the template's labels and
-- kupenstack.io/instance-template-hash (ks.set.plan.hash). What to do is ks.set.plan's:
-- scale up and down (not Available first, then the newest), delete and replace a member
-- that gave up recovering (Available False, reason RecoveryLimit), a member deleted behind
-- our back is simply missing and made again, and a template change replaces the members
-- one by one within strategy.rollingUpdate (maxSurge 1, maxUnavailable 0 by default),
-- unless spec.paused.
--
-- Ownership: the set counts only the Instances whose controller it is, in its namespace.
-- It adopts an Instance with no controller only when it matches spec.selector AND carries
-- the template-hash label, i.e. it was made by an InstanceSet and orphaned (`kubectl
-- delete --cascade=orphan`, then the set applied again); a hand-made Instance is never
-- adopted, so never deleted.
--
-- spec.placement (anti-affinity, soft-anti-affinity, affinity) is a Nova server group in
-- the members' project, named kupenstack-<set>-<set UID> so that it is found again after a
-- restart, passed to each member as spec.resource.scheduler_hints.group; it is deleted
-- with the set, unless Instances the set no longer owns (orphaned) still use it.
local kube = require "ks.core.kube"
local json = require "ks.core.json"
local time = require "ks.core.time"
local k8s = require "ks.k8s"
local plan = require "ks.set.plan"
local resource = require "ks.resource"
local nova = require "ks.openstack.nova"
local openstack = require "ks.openstack"

local type = type
local next = next
local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local concat = table.concat


local GROUP, VERSION = "kupenstack.io", "v1alpha1"
local API_VERSION = GROUP .. "/" .. VERSION
local INSTANCES = { group = GROUP, version = VERSION, kind = "Instance" }
local HASH_LABEL = "kupenstack.io/instance-template-hash"
-- A create or delete the cache has not shown yet is counted for this long at most.
local EXPECT_SECONDS = 60

-- What this state asked of the API server that the cache may not show yet, by set UID:
-- { created = { name = {at=, hash=} }, deleted = { uid = at } } (a ReplicaSet's
-- "expectations": without them, a reconcile right after a create would create again).
local expect = {}


local InstanceSet = {
  api = 1, group = GROUP, version = VERSION, kind = "InstanceSet",
  finalizer = "kupenstack.io/instanceset",
  owns = { INSTANCES },
  -- The namespace's project (for the server group) is read from the Namespace: once it
  -- has one, the sets of that namespace look again.
  watches = {
    { group = "", version = "v1", kind = "Namespace", map = function(n)
      local keys = {}
      for i, o in ipairs(kube.list({ group = GROUP, version = VERSION, kind = "InstanceSet" },
          { namespace = n.metadata.name })) do
        keys[i] = n.metadata.name .. "/" .. o.metadata.name
      end
      return keys
    end },
  },
  concurrency = 4, resync = 300,
}


local function expectations(set)
  local uid = set.metadata.uid
  local e = expect[uid]
  if not e then
    e = { created = {}, deleted = {} }
    expect[uid] = e
  end
  return e
end


local function cond(ctype, status, reason, message)
  return { type = ctype, status = status, reason = reason, message = message }
end


local function available(o)
  local c = k8s.get_condition(o, "Available")
  return c ~= nil and c.status == "True"
end


local function gave_up(o)
  local c = k8s.get_condition(o, "Available")
  return c ~= nil and c.status == "False" and c.reason == "RecoveryLimit"
end


-- The set's members as ks.set.plan wants them: the Instances it controls in its namespace,
-- with what it created or deleted and the cache does not show yet.
local function members_of(set)
  local ns, uid = set.metadata.namespace, set.metadata.uid
  local e = expectations(set)
  local now = time.now()
  local out, seen = {}, {}
  for _, o in ipairs(kube.list(INSTANCES, { namespace = ns, owner = uid })) do
    local c = k8s.controller_of(o)
    if c and c.uid == uid and o.metadata.namespace == ns then
      local m = o.metadata
      seen[m.name] = true
      local gone_at = e.deleted[m.uid]
      if gone_at and (m.deletionTimestamp or now - gone_at > EXPECT_SECONDS) then
        e.deleted[m.uid] = nil
        gone_at = nil
      end
      out[#out + 1] = {
        name = m.name, uid = m.uid, created = m.creationTimestamp,
        hash = m.labels and m.labels[HASH_LABEL], available = available(o),
        failed = gave_up(o), deleting = m.deletionTimestamp ~= nil or gone_at ~= nil,
      }
    end
  end
  for name, c in pairs(e.created) do
    if seen[name] or now - c.at > EXPECT_SECONDS then
      e.created[name] = nil
    else
      out[#out + 1] = { name = name, hash = c.hash, created = "9999", available = false }
    end
  end
  return out, next(e.created) ~= nil
end


-- Adopt the orphans an InstanceSet made (they carry the hash label) that match the
-- selector; how many, or nil and an error.
local function adopt(set, ctx)
  local ns, sel, n = set.metadata.namespace, set.spec.selector, 0
  for _, o in ipairs(kube.list(INSTANCES, { namespace = ns })) do
    local m = o.metadata
    if not k8s.controller_of(o) and not m.deletionTimestamp and m.labels
        and m.labels[HASH_LABEL] and k8s.matches_selector(o, sel) then
      local refs = json.array({})
      for _, r in ipairs(m.ownerReferences or {}) do
        refs[#refs + 1] = r
      end
      refs[#refs + 1] = { apiVersion = API_VERSION, kind = "InstanceSet",
        name = set.metadata.name, uid = set.metadata.uid, controller = true,
        blockOwnerDeletion = true }
      local _, err = kube.patch(INSTANCES, ns, m.name, { metadata = {
        ownerReferences = refs, resourceVersion = m.resourceVersion } })
      if err then
        return nil, "could not adopt Instance " .. m.name .. ": " .. tostring(err)
      end
      ctx.event("Normal", "Adopted", "adopted Instance " .. m.name)
      n = n + 1
    end
  end
  return n
end


-- ---- the server group ----------------------------------------------------------------------

local function group_name(set)
  return "kupenstack-" .. set.metadata.name .. "-" .. set.metadata.uid
end


-- The cloud the members' servers are in: the template's credentials, or the namespace's
-- project. cloud, err, wait.
local function members_cloud(set)
  return resource.cloud_for({ metadata = set.metadata, spec = set.spec.template.spec })
end


local function find_group(cloud, set)
  local groups, err = nova.server_groups(cloud)
  if not groups then
    return nil, err
  end
  for _, g in ipairs(groups) do
    if g.name == group_name(set) then
      return g
    end
  end
  return nil
end


-- The set's server group for spec.placement: the group, or nil (none wanted) ; or nil,
-- an error result.
local function server_group(set, ctx)
  local policy = set.spec.placement or "none"
  local st = set.status and set.status.serverGroup
  if st and st.policy and st.policy ~= policy then
    return nil, resource.terminal("spec.placement is immutable once the set has a server "
      .. "group (" .. st.policy .. "): delete and recreate the InstanceSet to change it")
  end
  if policy == "none" then
    return nil
  end
  local cloud, err, wait = members_cloud(set)
  if not cloud then
    return nil, wait and resource.waiting(wait) or resource.failed(err)
  end
  local g
  if st and st.id then
    g, err = nova.server_group_get(cloud, st.id)
    if not g and not openstack.is_not_found(err) then
      return nil, resource.failed(err)
    end
    if not g then
      ctx.event("Warning", "Drift", "server group " .. st.id .. " was deleted outside "
        .. "KupenStack; creating it again (members made before stay outside it)")
    end
  end
  if not g then
    g, err = find_group(cloud, set)
    if err then
      return nil, resource.failed(err)
    end
  end
  if not g then
    g, err = nova.server_group_create(cloud, group_name(set), policy)
    if not g then
      return nil, resource.failed(err)
    end
    ctx.event("Normal", "ServerGroupCreated", "created server group " .. g.id .. " ("
      .. policy .. ")")
  end
  return g
end


-- ---- members --------------------------------------------------------------------------------

local function new_member(set, hash, group)
  local t = set.spec.template
  local labels = k8s.copy((t.metadata and t.metadata.labels) or {})
  labels[HASH_LABEL] = hash
  local spec = k8s.copy(t.spec)
  if group then
    spec.resource = spec.resource or {}
    spec.resource.scheduler_hints = { group = group.id }
  end
  return {
    apiVersion = API_VERSION, kind = "Instance",
    metadata = {
      generateName = set.metadata.name .. "-", namespace = set.metadata.namespace,
      labels = labels, annotations = t.metadata and k8s.copy(t.metadata.annotations) or nil,
      ownerReferences = json.array({ { apiVersion = API_VERSION, kind = "InstanceSet",
        name = set.metadata.name, uid = set.metadata.uid, controller = true,
        blockOwnerDeletion = true } }),
    },
    spec = spec,
  }
end


local function create(set, n, hash, group, ctx)
  local e = expectations(set)
  for _ = 1, n do
    local o, err = kube.create(new_member(set, hash, group))
    if not o then
      return nil, "could not create an Instance: " .. tostring(err)
    end
    e.created[o.metadata.name] = { at = time.now(), hash = hash }
    ctx.event("Normal", "SuccessfulCreate", "created Instance " .. o.metadata.name)
  end
  return true
end


local function delete(set, members, why, ctx)
  local e = expectations(set)
  for _, m in ipairs(members) do
    if m.uid then
      local _, err = kube.delete(INSTANCES, set.metadata.namespace, m.name, { uid = m.uid })
      if err and not (type(err) == "table" and err.code == 404) then
        return nil, "could not delete Instance " .. m.name .. ": " .. tostring(err)
      end
      e.deleted[m.uid] = time.now()
      ctx.event("Normal", "SuccessfulDelete", "deleted Instance " .. m.name .. " ("
        .. (m.failed and "it gave up recovering (RecoveryLimit); replacing it" or why) .. ")")
    end
  end
  return true
end


-- ---- status --------------------------------------------------------------------------------

local function count(members, hash, strategy, replicas)
  local c = { replicas = 0, ready = 0, updated = 0 }
  for _, m in ipairs(members) do
    if not m.deleting and not m.failed then
      c.replicas = c.replicas + 1
      c.ready = c.ready + (m.available and 1 or 0)
      c.updated = c.updated + (m.hash == hash and 1 or 0)
    end
  end
  c.done = c.replicas == replicas and c.ready == replicas and c.updated == replicas
  c.enough = c.ready >= replicas - strategy.max_unavailable
  return c
end


local function conditions(c, p, replicas, strategy)
  local msg = c.ready .. " of " .. replicas .. " Available, " .. c.updated .. " up to date"
  local out = {
    c.enough and cond("Available", "True", "MinimumReplicasAvailable", msg)
      or cond("Available", "False", "MinimumReplicasUnavailable", msg),
  }
  local reason
  if c.done then
    out[2] = cond("Progressing", "False", "Complete", msg)
    return out
  elseif strategy.paused and c.updated < c.replicas then
    out[2] = cond("Progressing", "False", "Paused", msg .. "; spec.paused stops the rollout")
    return out
  elseif p.rolling then
    reason = "RollingUpdate"
  elseif c.replicas < replicas then
    reason = "ScalingUp"
  elseif c.replicas > replicas then
    reason = "ScalingDown"
  else
    reason = "WaitingForAvailable"
  end
  out[2] = cond("Progressing", "True", reason, msg)
  return out
end


-- ---- reconcile and finalize -----------------------------------------------------------------

function InstanceSet.reconcile(set, ctx)
  local spec = set.spec or {}
  local msg = plan.check(spec)
  if msg then
    return resource.terminal(msg)
  end
  local selector = plan.selector_string(spec.selector)
  local st = set.status or {}
  if st.selector and st.selector ~= selector then
    return resource.terminal("spec.selector is immutable (it was " .. st.selector
      .. "): delete and recreate the InstanceSet to change it")
  end
  local group, early = server_group(set, ctx)
  if early then
    return early
  end
  local _, aerr = adopt(set, ctx)
  if aerr then
    return nil, aerr
  end
  local replicas = spec.replicas or 1
  local hash = plan.hash(spec.template, spec.placement)
  local strategy = plan.strategy(spec)
  local members, pending = members_of(set)
  local p = plan.plan(replicas, members, hash, strategy)
  local ok, err = delete(set, p.delete, p.rolling and "rolling update" or "scale down", ctx)
  if not ok then
    return nil, err
  end
  ok, err = create(set, p.create, hash, group, ctx)
  if not ok then
    return nil, err
  end
  if #p.delete > 0 or p.create > 0 then
    members, pending = members_of(set)
  end
  local c = count(members, hash, strategy, replicas)
  local status = {
    replicas = c.replicas, readyReplicas = c.ready, availableReplicas = c.ready,
    updatedReplicas = c.updated, selector = selector, templateHash = hash,
    serverGroup = group and { id = group.id, name = group.name, policy = spec.placement }
      or nil,
  }
  local again
  if pending then
    again = 5
  elseif not c.done then
    again = 30 -- the members' changes wake the set; this is the backstop
  end
  return { status = status, conditions = conditions(c, p, replicas, strategy),
           requeue_after = again }
end


local function orphaned_users(set, gid)
  local users = {}
  for _, o in ipairs(kube.list(INSTANCES, { namespace = set.metadata.namespace })) do
    local r = o.spec and o.spec.resource
    local h = r and r.scheduler_hints
    if h and h.group == gid and not o.metadata.deletionTimestamp
        and not k8s.is_owned_by(o, set) then
      users[#users + 1] = o.metadata.name
    end
  end
  return users
end


function InstanceSet.finalize(set, ctx)
  expect[set.metadata.uid] = nil
  local st = set.status and set.status.serverGroup
  local spec = set.spec or {}
  if not (st and st.id) and (spec.placement or "none") == "none" then
    return {}
  end
  local cloud, err, wait = members_cloud(set)
  if not cloud then
    if wait then
      return {} -- no project any more: nothing of ours is left in it
    end
    return resource.failed(err)
  end
  local g
  if st and st.id then
    g, err = nova.server_group_get(cloud, st.id)
  else
    g, err = find_group(cloud, set)
  end
  if not g then
    if err and not openstack.is_not_found(err) then
      return resource.failed(err)
    end
    return {}
  end
  local users = orphaned_users(set, g.id)
  if k8s.has_finalizer(set, "orphan") or #users > 0 then
    ctx.event("Normal", "Detached", "left server group " .. g.id .. " in OpenStack: "
      .. "the set's Instances are orphaned, not deleted"
      .. (#users > 0 and (" (" .. concat(users, ", ") .. ")") or ""))
    return {}
  end
  local _, derr = nova.server_group_delete(cloud, g.id)
  if derr and not openstack.is_not_found(derr) then
    return resource.failed(derr)
  end
  ctx.event("Normal", "Deleted", "deleted server group " .. g.id)
  return {}
end


return InstanceSet
