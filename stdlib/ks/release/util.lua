-- ks/release/util.lua: what the parts of ks.release share: an object's key, a digest of a
-- value, a canonical JSON text (sorted keys) and the subset comparison that decides whether
-- an object must be written at all.
local json = require "ks.core.json"

local byte = string.byte
local concat = table.concat
local format = string.format
local pairs = pairs
local ipairs = ipairs
local sort = table.sort
local tostring = tostring
local type = type


local _M = {}


-- "Kind/namespace/name" (namespace "" for cluster scope): how the engine names an object.
function _M.key(obj)
  local md = obj.metadata or {}
  return (obj.kind or "?") .. "/" .. (md.namespace or "") .. "/" .. (md.name or "?")
end


-- "Kind/name": how messages name an object of the release's namespace.
function _M.name(obj)
  return (obj.kind or "?") .. "/" .. ((obj.metadata or {}).name or "?")
end


local function is_array(v)
  local mt = getmetatable(v)
  if mt and mt.__jsontype == "array" then
    return true
  end
  local n = #v
  if n == 0 then
    return false
  end
  return next(v, n) == nil
end
_M.is_array = is_array


-- JSON text of v with object keys sorted, so that equal values give equal text.
-- JSON's null (json.null, a light userdata: a YAML key with no value renders to it) is
-- "null", never tostring's "userdata: 0x...": that holds an address, which differs from one
-- process to the next, and a digest of it would see a change after every restart.
local function canon(v, out)
  local t = type(v)
  if v == json.null or v == nil then
    out[#out + 1] = "null"
  elseif t == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        canon(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = format("%q:", k)
        canon(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then
    out[#out + 1] = format("%q", v)
  else
    out[#out + 1] = tostring(v)
  end
end


function _M.canonical(v)
  local out = {}
  canon(v, out)
  return concat(out)
end


-- A 16-hex-digit digest of v's canonical text: two polynomial hashes modulo primes
-- below 2^26 (exact in doubles). For change detection, not for security.
function _M.digest(v)
  local s = type(v) == "string" and v or _M.canonical(v)
  local a, b = 7, 11
  for i = 1, #s do
    local c = byte(s, i)
    a = (a * 257 + c) % 67108859
    b = (b * 263 + c) % 67108837
  end
  return format("%08x%08x", a, b)
end


-- Kubernetes quantities: the API server stores them canonical (0.5 -> "500m",
-- 1024Mi -> "1Gi", 1000m -> "1"), so a declared form is compared by value with the
-- stored one. The value of a quantity (a number, or a string as resource.Quantity reads
-- it), or nil when it is none.
local SUFFIX = { [""] = 1, n = 1e-9, u = 1e-6, m = 1e-3, k = 1e3, M = 1e6, G = 1e9, T = 1e12,
                 P = 1e15, E = 1e18, Ki = 2 ^ 10, Mi = 2 ^ 20, Gi = 2 ^ 30, Ti = 2 ^ 40,
                 Pi = 2 ^ 50, Ei = 2 ^ 60 }
function _M.quantity(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local num, suffix = v:match("^([+-]?%d*%.?%d*)(.*)$")
  if not num or not num:find("%d") then return nil end
  local x = tonumber(num)
  if not x then return nil end
  local scale = SUFFIX[suffix]
  if not scale then
    local e = suffix:match("^[eE]([+-]?%d+)$")
    if not e then return nil end
    scale = 10 ^ tonumber(e)
  end
  return x * scale
end


-- The maps whose values are quantities (a container's resources.requests/limits, a
-- ResourceQuota's hard, a LimitRange's bounds), and fields that are one.
local QUANTITY_MAP = { requests = true, limits = true, hard = true, capacity = true,
                       default = true, defaultRequest = true, max = true, min = true }
local QUANTITY_FIELD = { sizeLimit = true }


-- Does want, at path, hold the same quantity as have?
local function same_quantity(want, have, path)
  local parent, key = path:match("%.([%w]+)%.([^.%[]+)$")
  if not (QUANTITY_MAP[parent] or QUANTITY_FIELD[key] or
          QUANTITY_FIELD[path:match("%.([^.%[]+)$") or ""]) then
    return false
  end
  local a, b = _M.quantity(want), _M.quantity(have)
  if not (a and b) then return false end
  return a == b or math.abs(a - b) <= 1e-12 * math.max(math.abs(a), math.abs(b))
end


local function empty(v)
  return v == nil or v == json.null or (type(v) == "table" and next(v) == nil)
end


-- The first path at which want is not contained in have (want's every field present in
-- have with an equal value; arrays element by element, of equal length; an empty map or
-- list, or null, matches an absent field; a quantity matches its canonical form), or nil
-- when it is. Defaults the API server adds to have do not count.
local function differs(want, have, path)
  if empty(want) then
    if empty(have) or type(have) ~= "table" then
      return nil
    end
    return nil
  end
  if type(want) ~= "table" then
    if want ~= have and not same_quantity(want, have, path) then
      return path
    end
    return nil
  end
  if type(have) ~= "table" then
    return path
  end
  if is_array(want) then
    if #want ~= #have then
      return path
    end
    for i, x in ipairs(want) do
      local p = differs(x, have[i], path .. "[" .. (i - 1) .. "]")
      if p then return p end
    end
    return nil
  end
  for k, x in pairs(want) do
    local p = differs(x, have[k], path .. "." .. tostring(k))
    if p then return p end
  end
  return nil
end


function _M.differs(want, have)
  return differs(want, have, "")
end


-- The value at a dotted path of v ("spec.replicas"), or nil.
function _M.at(v, path)
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end


-- The paths (sorted) at which a and b differ, both ways, at most limit of them.
local function diff_paths(a, b, path, out, limit)
  if #out >= limit then return end
  if type(a) == "table" and type(b) == "table" and a ~= json.null and b ~= json.null then
    local seen = {}
    for k, x in pairs(a) do
      seen[k] = true
      diff_paths(x, b[k], path .. "." .. tostring(k), out, limit)
    end
    for k, x in pairs(b) do
      if not seen[k] then diff_paths(nil, x, path .. "." .. tostring(k), out, limit) end
    end
  elseif a ~= b then
    out[#out + 1] = path
  end
end


function _M.diff_paths(a, b, limit)
  local out = {}
  diff_paths(a, b, "", out, limit or 20)
  sort(out)
  return out
end


-- s cut to at most n bytes, saying how much was cut.
function _M.truncate(s, n)
  s = tostring(s or "")
  n = n or 512
  if #s <= n then return s end
  return s:sub(1, n) .. format("... (%d more bytes)", #s - n)
end


return _M
