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


-- Why a workload's pods are not ready, from the pods (live objects): the first pod with a
-- container waiting for a reason other than its start (CrashLoopBackOff, ImagePullBackOff,
-- ...) with the reason, message and restarts, else the first pod with a container not
-- Ready, else one not scheduled; nil when every pod is ready. Cut to at most limit bytes.
local SOFT_WAIT = { ContainerCreating = true, PodInitializing = true }


function _M.pod_problem(pods, limit)
  limit = limit or 300
  local function cut(s)
    if #s <= limit then return s end
    return s:sub(1, limit) .. "..."
  end
  local unready, pending
  for _, p in ipairs(pods or {}) do
    local name = "pod " .. tostring((p.metadata or {}).name)
    local st = p.status or {}
    local all = {}
    for _, c in ipairs(st.initContainerStatuses or {}) do all[#all + 1] = c end
    for _, c in ipairs(st.containerStatuses or {}) do all[#all + 1] = c end
    for _, c in ipairs(all) do
      local w = (c.state or {}).waiting
      if w and w.reason and not SOFT_WAIT[w.reason] then
        local last = ((c.lastState or {}).terminated) or {}
        local msg = name .. " container " .. tostring(c.name) .. ": " .. w.reason
        if w.message and w.message ~= "" then msg = msg .. ": " .. w.message end
        msg = msg .. " (restarts " .. n(c.restartCount) .. ")"
        if last.exitCode then
          msg = msg .. "; last exit " .. n(last.exitCode) ..
            (last.message and last.message ~= "" and (": " .. last.message) or "")
        end
        return cut(msg)
      end
      if not c.ready and not unready and st.phase == "Running" and (c.state or {}).running then
        unready = name .. " container " .. tostring(c.name) .. " running but not Ready" ..
          " (restarts " .. n(c.restartCount) .. ")"
      end
    end
    if not pending and st.phase == "Pending" and #all == 0 then
      local sc = cond(p, "PodScheduled")
      pending = name .. " Pending" ..
        ((sc and sc.status == "False") and (": " .. tostring(sc.reason) .. ": " ..
                                           tostring(sc.message)) or "")
    end
  end
  return unready and cut(unready) or pending and cut(pending) or nil
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
