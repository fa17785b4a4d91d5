-- ks/release/readiness.lua: is an applied object ready, as `kubectl rollout status` and
-- kstatus compute it. Pure: takes the live object, returns "ready", "waiting" or "failed"
-- and a message saying what is waited on or what failed.
local ipairs = ipairs
local tostring = tostring


local _M = {}


local function cond(obj, ctype)
  for _, c in ipairs(((obj.status or {}).conditions) or {}) do
    if c.type == ctype then return c end
  end
  return nil
end


local function n(v)
  return tonumber(v) or 0
end


local function generation_seen(obj)
  local st = obj.status or {}
  return n(st.observedGeneration) >= n(obj.metadata.generation)
end


local function deployment(d)
  local st, want = d.status or {}, n((d.spec or {}).replicas or 1)
  local p = cond(d, "Progressing")
  if p and p.reason == "ProgressDeadlineExceeded" then
    return "failed", "rollout failed: " .. tostring(p.message)
  end
  if not generation_seen(d) then
    return "waiting", "generation " .. n(d.metadata.generation) .. " not yet observed"
  end
  if n(st.updatedReplicas) < want then
    return "waiting", n(st.updatedReplicas) .. "/" .. want .. " replicas updated"
  end
  if n(st.replicas) > n(st.updatedReplicas) then
    return "waiting", (n(st.replicas) - n(st.updatedReplicas)) .. " old replicas pending termination"
  end
  if n(st.availableReplicas) < want then
    return "waiting", n(st.availableReplicas) .. "/" .. want .. " replicas available"
  end
  return "ready", want .. "/" .. want .. " replicas available"
end


local function statefulset(s)
  local st, want = s.status or {}, n((s.spec or {}).replicas or 1)
  if not generation_seen(s) then
    return "waiting", "generation " .. n(s.metadata.generation) .. " not yet observed"
  end
  if n(st.readyReplicas) < want then
    return "waiting", n(st.readyReplicas) .. "/" .. want .. " replicas ready"
  end
  local strategy = ((s.spec or {}).updateStrategy or {}).type or "RollingUpdate"
  if strategy == "RollingUpdate" then
    if n(st.updatedReplicas) < want then
      return "waiting", n(st.updatedReplicas) .. "/" .. want .. " replicas updated"
    end
    if st.updateRevision and st.currentRevision ~= st.updateRevision then
      return "waiting", "revision " .. tostring(st.updateRevision) .. " rolling out"
    end
  end
  return "ready", want .. "/" .. want .. " replicas ready"
end


local function daemonset(d)
  local st = d.status or {}
  local want = n(st.desiredNumberScheduled)
  if not generation_seen(d) then
    return "waiting", "generation " .. n(d.metadata.generation) .. " not yet observed"
  end
  if n(st.updatedNumberScheduled) < want then
    return "waiting", n(st.updatedNumberScheduled) .. "/" .. want .. " pods updated"
  end
  if n(st.numberAvailable) < want then
    return "waiting", n(st.numberAvailable) .. "/" .. want .. " pods available"
  end
  return "ready", want .. "/" .. want .. " pods available"
end


local function job(j)
  local f = cond(j, "Failed")
  if f and f.status == "True" then
    return "failed", "Job failed: " .. tostring(f.reason) .. ": " .. tostring(f.message)
  end
  local c = cond(j, "Complete")
  if c and c.status == "True" then
    return "ready", "complete"
  end
  local st = j.status or {}
  return "waiting", "not complete (" .. n(st.active) .. " active, " .. n(st.failed) .. " failed)"
end


local function pvc(p)
  local phase = (p.status or {}).phase
  if phase == "Bound" then return "ready", "bound" end
  return "waiting", "phase " .. tostring(phase)
end


local BY_KIND = {
  Deployment = deployment,
  StatefulSet = statefulset,
  DaemonSet = daemonset,
  Job = job,
  PersistentVolumeClaim = pvc,
}


-- Kinds whose readiness needs their live status (the others are ready once applied).
function _M.watched(kind)
  return BY_KIND[kind] ~= nil
end


-- "ready" | "waiting" | "failed", message.
function _M.of(obj)
  local f = BY_KIND[obj.kind]
  if not f then
    return "ready", "applied"
  end
  return f(obj)
end


return _M
