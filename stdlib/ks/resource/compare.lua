-- ks/resource/compare.lua: how a plugin compares what spec.resource wants with what
-- OpenStack has, as pure functions: the fields that differ (diff), a subset of fields
-- (pick), list membership (has), and JSON equality at any depth (equal: ks.k8s's, its
-- one home, with JSON null equal only to null).
local k8s = require "ks.k8s"

local ipairs = ipairs


local _M = {}


-- Are a and b the same JSON value, at any depth?
_M.equal = k8s.equal


-- Does list hold value?
function _M.has(list, value)
  for _, v in ipairs(list or {}) do
    if v == value then
      return true
    end
  end
  return false
end


-- The subset of t with the given keys (nil values left out).
function _M.pick(t, keys)
  local out = {}
  for _, k in ipairs(keys) do
    if t[k] ~= nil then
      out[k] = t[k]
    end
  end
  return out
end


-- Fields of want (spec.resource) whose values differ from have's (OpenStack's), among
-- keys; nil when none do.
function _M.diff(want, have, keys)
  local out, n = {}, 0
  for _, k in ipairs(keys) do
    local w = want[k]
    if w ~= nil and not _M.equal(w, have[k]) then
      out[k] = w
      n = n + 1
    end
  end
  return n > 0 and out or nil
end


return _M
