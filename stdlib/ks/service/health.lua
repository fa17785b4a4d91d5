-- ks/service/health.lua: what the pods of a service say when it is not healthy: the pod
-- of a failed Job or of a component not Ready, named with its message, and the pods that
-- crash-loop past a threshold (reported with their last message and restarted by
-- deleting them, as the paper's validation agent would). Reads the pods live
-- (kube.fetch_list: no cache holds them), only while something is not healthy.
local kube = require "ks.core.kube"

local ipairs = ipairs
local tostring = tostring


local _M = {}

local PODS = { apiVersion = "v1", kind = "Pod" }


local function truncate(s, n)
  s = tostring(s or "")
  if #s > n then return s:sub(1, n) .. "..." end
  return s
end


-- What a pod's first troubled container says: "reason (exit N): message", or nil when
-- all its containers are Ready.
function _M.pod_message(pod)
  for _, cs in ipairs((pod.status or {}).containerStatuses or {}) do
    if not cs.ready then
      local st, last = cs.state or {}, cs.lastState or {}
      local t = st.terminated or last.terminated
      local w = st.waiting
      local parts = {}
      if w and w.reason then parts[#parts + 1] = w.reason end
      if t then
        parts[#parts + 1] = tostring(t.reason or "Terminated") .. " (exit " ..
          tostring(t.exitCode) .. ")"
      end
      if (cs.restartCount or 0) > 0 then parts[#parts + 1] = "restarted " .. cs.restartCount .. " times" end
      local msg = (t and t.message) or (w and w.message)
      if #parts == 0 then parts[1] = st.running and "running, not Ready" or "not started" end
      return table.concat(parts, ", ") .. (msg and (": " .. truncate(msg, 300)) or "")
    end
  end
  if (pod.status or {}).phase == "Pending" then return "Pending (not scheduled or not started)" end
  return nil
end


local function restarts(pod)
  local n = 0
  for _, cs in ipairs((pod.status or {}).containerStatuses or {}) do
    n = n + (cs.restartCount or 0)
  end
  return n
end


-- The pods of ns with labels, or nil, err.
local function pods(ns, labels)
  local list, err = kube.fetch_list(PODS, ns, { labels = labels })
  if not list then return nil, err end
  return list.items or {}
end


-- "pod NAME: message" for the first troubled pod of the Job named job, or nil.
function _M.job_pod(ns, job)
  local ps, err = pods(ns, { ["job-name"] = job })
  if not ps then return nil, err end
  for _, p in ipairs(ps) do
    local m = _M.pod_message(p)
    if m then return "pod " .. p.metadata.name .. ": " .. m end
  end
  return nil
end


-- "pod NAME: message" for the first pod of Deployment d that is not Ready, or nil.
function _M.deployment_pod(d)
  local labels = ((d.spec or {}).selector or {}).matchLabels
  if not labels then return nil end
  local ps, err = pods(d.metadata.namespace, labels)
  if not ps then return nil, err end
  for _, p in ipairs(ps) do
    if not p.metadata.deletionTimestamp then
      local m = _M.pod_message(p)
      if m then return "pod " .. p.metadata.name .. ": " .. m end
    end
  end
  return nil
end


-- The pods of Deployment d restarted at least threshold times, deleted (their
-- Deployment makes new ones): { {pod=, restarts=, message=} }, or nil, err.
function _M.restart_crashlooping(d, threshold)
  local labels = ((d.spec or {}).selector or {}).matchLabels
  if not labels or not threshold or threshold <= 0 then return {} end
  local ps, err = pods(d.metadata.namespace, labels)
  if not ps then return nil, err end
  local out = {}
  for _, p in ipairs(ps) do
    local n = restarts(p)
    if n >= threshold and not p.metadata.deletionTimestamp then
      local _, derr = kube.delete(PODS, p.metadata.namespace, p.metadata.name,
                                  { uid = p.metadata.uid })
      if derr and derr.code ~= 404 then return nil, derr end
      out[#out + 1] = { pod = p.metadata.name, restarts = n, message = _M.pod_message(p) }
    end
  end
  return out
end


return _M
