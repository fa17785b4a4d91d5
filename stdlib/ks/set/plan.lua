-- ks/set/plan.lua: what an InstanceSet does next, as pure functions (no I/O): the spec's
-- checks, the template hash its members are labelled with, the rolling-update bounds, and
-- the plan (how many members to create, which to delete) from the members as they are.
--
--   local plan = require "ks.set.plan"
--   local msg = plan.check(spec)                 -- nil, or what is wrong, naming the field
--   local h = plan.hash(spec.template, spec.placement)
--   local p = plan.plan(spec.replicas, members, h, plan.strategy(spec))
--   -- p.create: a number; p.delete: members, in the order to delete them
--
-- A member is { name=, uid=, hash=, created= (RFC 3339), available=, failed=, deleting= }:
-- failed means its Instance gave up recovering (Available False, reason RecoveryLimit);
-- such a member is deleted and replaced, as a ReplicaSet replaces a failed pod.
local k8s = require "ks.k8s"
local json = require "ks.core.json"

local type = type
local next = next
local pcall = pcall
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local byte = string.byte
local format = string.format
local concat = table.concat
local sort = table.sort
local floor = math.floor
local ceil = math.ceil


local _M = {}

-- Defaults for VMs: never fewer Available than asked (a VM takes minutes to boot and
-- holds state a user cares about), one extra VM at a time (quota stays bounded).
_M.DEFAULT_MAX_SURGE = 1
_M.DEFAULT_MAX_UNAVAILABLE = 0
-- Creates asked of the API server in one reconcile at most; the rest at the next.
_M.BURST = 100


-- ---- the spec -----------------------------------------------------------------------------

local function int_or_percent(v, field)
  if v == nil then
    return true
  end
  if type(v) == "number" then
    if v >= 0 and v == floor(v) then
      return true
    end
  elseif type(v) == "string" and v:match("^%d+%%$") then
    return true
  end
  return false, field .. " must be a whole number or a percentage like 25% (it is "
    .. tostring(v) .. ")"
end


-- nil when spec can be acted on, else a message naming the field at fault.
function _M.check(spec)
  local sel = spec.selector or {}
  local ml = sel.matchLabels or {}
  if next(ml) == nil and #(sel.matchExpressions or {}) == 0 then
    return "spec.selector must have matchLabels or matchExpressions: an empty selector "
      .. "would match every Instance of the namespace"
  end
  local tm = spec.template and spec.template.metadata
  local labels = (tm and tm.labels) or {}
  local keys = {}
  for k in pairs(ml) do
    keys[#keys + 1] = k
  end
  sort(keys)
  for _, k in ipairs(keys) do
    if labels[k] ~= ml[k] then
      return "spec.template.metadata.labels must match spec.selector: the selector wants "
        .. k .. "=" .. tostring(ml[k]) .. ", the template has "
        .. (labels[k] and (k .. "=" .. tostring(labels[k])) or ("no label " .. k))
    end
  end
  local ok, matched = pcall(k8s.matches_selector, { metadata = { labels = labels } }, sel)
  if not ok then
    return "spec.selector.matchExpressions: " .. tostring(matched)
  end
  if not matched then
    return "spec.template.metadata.labels must match spec.selector: "
      .. "spec.selector.matchExpressions does not match them"
  end
  local ru = spec.strategy and spec.strategy.rollingUpdate or {}
  local msg
  ok, msg = int_or_percent(ru.maxSurge, "spec.strategy.rollingUpdate.maxSurge")
  if not ok then
    return msg
  end
  ok, msg = int_or_percent(ru.maxUnavailable, "spec.strategy.rollingUpdate.maxUnavailable")
  if not ok then
    return msg
  end
  local s = _M.strategy(spec)
  if s.max_surge == 0 and s.max_unavailable == 0 and (spec.replicas or 1) > 0 then
    return "spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0 "
      .. "(nothing could be replaced)"
  end
  return nil
end


local function resolve(v, replicas, default, round)
  if v == nil then
    return default
  end
  if type(v) == "number" then
    return v
  end
  return round(tonumber(v:sub(1, -2)) * replicas / 100)
end


-- {max_surge=, max_unavailable=, paused=} for spec (percentages of spec.replicas: surge
-- rounded up, unavailable down, as a Deployment does).
function _M.strategy(spec)
  local ru = spec.strategy and spec.strategy.rollingUpdate or {}
  local r = spec.replicas or 1
  return {
    max_surge = resolve(ru.maxSurge, r, _M.DEFAULT_MAX_SURGE, ceil),
    max_unavailable = resolve(ru.maxUnavailable, r, _M.DEFAULT_MAX_UNAVAILABLE, floor),
    paused = spec.paused == true,
  }
end


-- The selector as a label-selector string (status.selector, for the scale subresource).
function _M.selector_string(sel)
  local parts = {}
  for k, v in pairs(sel.matchLabels or {}) do
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  sort(parts)
  for _, e in ipairs(sel.matchExpressions or {}) do
    local vals = concat(e.values or {}, ",")
    if e.operator == "In" then
      parts[#parts + 1] = e.key .. " in (" .. vals .. ")"
    elseif e.operator == "NotIn" then
      parts[#parts + 1] = e.key .. " notin (" .. vals .. ")"
    elseif e.operator == "Exists" then
      parts[#parts + 1] = e.key
    elseif e.operator == "DoesNotExist" then
      parts[#parts + 1] = "!" .. e.key
    end
  end
  return concat(parts, ",")
end


-- ---- the template hash ------------------------------------------------------------------

-- The text hashed: sorted keys, a "," after each item. Not ks.release.util.canonical's
-- JSON, though close: this is the form members were labelled with, and a new form would
-- change every InstanceSet's hash and replace its members. json.null (a light userdata in
-- the host) is "null", never tostring's address, which differs from one process to the
-- next and changed the hash of a template holding a null at each restart.
local function canon(v, out)
  if v == json.null then
    out[#out + 1] = "null"
  elseif type(v) ~= "table" then
    out[#out + 1] = type(v) == "string" and format("%q", v) or tostring(v)
  elseif k8s.is_array(v) then
    out[#out + 1] = "["
    for _, x in ipairs(v) do
      canon(x, out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "]"
  else
    local keys = {}
    for key in pairs(v) do
      keys[#keys + 1] = tostring(key)
    end
    sort(keys)
    out[#out + 1] = "{"
    for _, key in ipairs(keys) do
      out[#out + 1] = format("%q:", key)
      canon(v[key], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  end
end


local DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


local function base36(n, width)
  local s = {}
  for i = width, 1, -1 do
    local d = n % 36
    s[i] = DIGITS:sub(d + 1, d + 1)
    n = floor(n / 36)
  end
  return concat(s)
end


-- A label value (12 characters of [0-9a-z]) that changes when the template or the
-- placement does: the members made from it carry it, as pods carry pod-template-hash. Key
-- order does not matter; it is not a secure digest (it needs not be).
function _M.hash(template, placement)
  local out = {}
  canon({ template = template, placement = placement or "none" }, out)
  local s = concat(out)
  local a, b = 7, 11
  for i = 1, #s do
    local c = byte(s, i)
    a = (a * 31 + c) % 2147483647
    b = (b * 131 + c) % 2147483629
  end
  return base36(a, 6) .. base36(b, 6)
end


-- ---- the plan ---------------------------------------------------------------------------

-- Members in the order to delete them: not Available first, then those of an older
-- template, then the newest (by creation, then by name).
function _M.rank(members, hash)
  local out = {}
  for i, m in ipairs(members) do
    out[i] = m
  end
  sort(out, function(x, y)
    if (x.available == true) ~= (y.available == true) then
      return not x.available
    end
    local xo, yo = x.hash ~= hash, y.hash ~= hash
    if hash and xo ~= yo then
      return xo
    end
    if (x.created or "") ~= (y.created or "") then
      return (x.created or "") > (y.created or "")
    end
    return (x.name or "") > (y.name or "")
  end)
  return out
end


local function take(list, n, into)
  for i = 1, n do
    into[#into + 1] = list[i]
  end
end


local function min(a, b)
  return a < b and a or b
end


local function max(a, b)
  return a > b and a or b
end


-- The plan for replicas members of template hash from members (see the top): { create =
-- n, delete = { member... }, rolling = bool }. Deleting members do not count (they are on
-- their way out, as terminating pods for a ReplicaSet); failed ones are deleted.
function _M.plan(replicas, members, hash, strategy)
  local live, new, old, old_down, old_up = {}, {}, {}, {}, {}
  local out = { create = 0, delete = {}, rolling = false }
  local available = 0
  for _, m in ipairs(members) do
    if m.failed and not m.deleting then
      out.delete[#out.delete + 1] = m
    elseif not m.deleting then
      live[#live + 1] = m
      available = available + (m.available and 1 or 0)
      if m.hash == hash then
        new[#new + 1] = m
      else
        old[#old + 1] = m
        if m.available then
          old_up[#old_up + 1] = m
        else
          old_down[#old_down + 1] = m
        end
      end
    end
  end
  if #old == 0 or strategy.paused then
    local diff = replicas - #live
    if diff > 0 then
      out.create = min(diff, _M.BURST)
    elseif diff < 0 then
      take(_M.rank(live, hash), -diff, out.delete)
    end
    return out
  end
  out.rolling = true
  if #new > replicas then
    take(_M.rank(new, hash), #new - replicas, out.delete)
  end
  out.create = min(max(0, min(replicas + strategy.max_surge - #live, replicas - #new)), _M.BURST)
  -- An old member that is not Available costs no availability: it goes at once.
  take(_M.rank(old_down, hash), #old_down, out.delete)
  local spare = available - (replicas - strategy.max_unavailable)
  take(_M.rank(old_up, hash), min(#old_up, max(0, spare)), out.delete)
  return out
end


return _M
