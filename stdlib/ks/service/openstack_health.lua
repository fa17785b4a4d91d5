-- ks/service/openstack_health.lua: the health of a service read from OpenStack itself, not
-- from Kubernetes (the paper's validation agent): its API answers its version document
-- (GET / of the catalog's endpoint), and Nova's services (os-services) and Neutron's agents
-- (agents) report up. A service kind names what to check with `openstack = {service =
-- "compute", check = "services"}` (or "agents"); the cloud is the operator's
-- (ks.resource.cloud: the clouds.yaml `kupenstack run` was given).
--
--   local oh = require "ks.service.openstack_health"
--   local st = oh.read(cloud, { service = "compute", check = "services" })
--   -- st = { api = "ok", down = { "nova-conductor@compute-1" }, total = 3 } or
--   --      { api = "<the error>" }
local json = require "ks.core.json"

local getmetatable = getmetatable
local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local tostring = tostring
local type = type


local _M = {}


-- Which entries of Nova's os-services list are down (state "down"), as "binary@host";
-- disabled ones are named "binary@host (disabled)". Pure.
function _M.services_down(list)
  local out = {}
  for _, s in ipairs(list or {}) do
    local who = tostring(s.binary) .. "@" .. tostring(s.host)
    if s.state ~= "up" then
      out[#out + 1] = who
    elseif s.status == "disabled" then
      out[#out + 1] = who .. " (disabled)"
    end
  end
  return out
end


-- Which of Neutron's agents are not alive (or administratively down), as "binary@host".
-- Pure.
function _M.agents_down(list)
  local out = {}
  for _, a in ipairs(list or {}) do
    local who = tostring(a.binary) .. "@" .. tostring(a.host)
    if a.alive ~= true then
      out[#out + 1] = who
    elseif a.admin_state_up == false then
      out[#out + 1] = who .. " (admin down)"
    end
  end
  return out
end


local CHECKS = {
  services = { path = "/os-services", key = "services", down = _M.services_down },
  agents = { path = "/agents", key = "agents", down = _M.agents_down },
}


-- The OpenStack-level health of one service: { api = "ok", total = n, down = {...} }, or
-- { api = "<why it does not answer>" } (never nil: an unreachable API is the report).
function _M.read(cloud, what)
  local _, err = cloud:versions(what.service)
  if err then return { api = "version document: " .. tostring(err) } end
  local c = CHECKS[what.check]
  if not c then return { api = "ok" } end
  local body, lerr = cloud:request(what.service, "GET", c.path)
  if not body then return { api = c.path .. ": " .. tostring(lerr) } end
  local list = type(body[c.key]) == "table" and body[c.key] or {}
  return { api = "ok", total = #list, down = json.array(c.down(list)) }
end


-- A handle on cloud (a ks.openstack handle) that finds its endpoints in the catalog's
-- region (the service's spec.region), sharing its credentials and counters.
function _M.in_region(cloud, region)
  if not region or cloud.region == region then return cloud end
  local c = setmetatable({}, getmetatable(cloud))
  for k, v in pairs(cloud) do c[k] = v end
  c.region = region
  return c
end


-- One line for a person: nil when healthy, else what is down or does not answer.
function _M.message(kind, st)
  if st.api ~= "ok" then return kind .. "'s API does not answer: " .. st.api end
  if st.down and #st.down > 0 then
    return kind .. " reports down: " .. table.concat(st.down, ", ")
  end
  return nil
end


-- out (a reconcile's result of a Ready service) with status.openstack and the condition
-- OpenStackHealthy, read from cloud (or the error why there is none), and a requeue after
-- every seconds so that it is read again.
function _M.add(out, kind, what, cloud, cerr, every)
  local st = cloud and _M.read(cloud, what) or { api = "no cloud: " .. tostring(cerr) }
  local msg = _M.message(kind, st)
  out.status.openstack = st
  out.conditions[#out.conditions + 1] = {
    type = "OpenStackHealthy", status = msg and "False" or "True",
    reason = msg and (st.api ~= "ok" and "APIUnreachable" or "ServiceDown") or "Healthy",
    message = msg or (kind .. "'s API answers" .. (st.total and
      (", all " .. st.total .. " " .. what.check .. " up") or "")),
  }
  out.requeue_after = math.min(out.requeue_after or every, every)
  return out
end


return _M
