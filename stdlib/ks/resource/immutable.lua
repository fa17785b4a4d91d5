-- ks/resource/immutable.lua: what a kind's spec may not change once its resource exists,
-- said as a table, and the message a user reads when it does (ks.resource's def.immutable).
--
--   immutable = {
--     { "spec.resource.availability_zone", have = "OS-EXT-AZ:availability_zone",
--       is = "the server is in" },
--     { "spec.imageRef", dep = "image", have = function(cur) return cur.image.id end,
--       is = "the server was booted from image" },
--     function(obj, cur, deps) end,  -- the odd case: a message, or nil
--   }
--
-- Each entry: [1] the field's path in the object (what the message names, and where the
-- wanted value is read unless dep or want say otherwise); have: the current value, a key
-- of the OpenStack object (JSON null and "" read as unset) or function(cur, deps, obj);
-- and optional:
--   dep = "image"                     the wanted value is deps.image (a resolved reference)
--   want = function(obj, deps) end    the wanted value, computed
--   same = function(want, have) end   whether they agree (default ==)
--   is = "the server is in"           how the message says what the resource has (default
--                                     "the <kind> has"); or function(have, want, cur) -> text
--   note = "resizing is not supported yet"  said after "is immutable", in parentheses
--   spec_says = false                 the message does not repeat the wanted value (a key)
--   unset_differs = true              an unset current value differs from a wanted one
--                                     (default: nothing to compare with, no message)
-- An unset wanted value is never a change. The message: "<path> is immutable (<note>):
-- <is> <have>[, spec says <want>]; delete and recreate the <Kind> to change it" (the
-- wanted value is said for a field of the spec, not for a reference's resolved ID nor
-- with spec_says = false).
local json = require "ks.core.json"

local type = type
local ipairs = ipairs
local tostring = tostring
local gmatch = string.gmatch


local _M = {}


local function unset(v)
  return v == nil or v == json.null or v == ""
end


-- The value at the dotted path in t, or nil.
function _M.at(t, path)
  for key in gmatch(path, "[^%.]+") do
    if type(t) ~= "table" then
      return nil
    end
    t = t[key]
  end
  return t
end


local function wanted(e, obj, deps)
  if e.dep then
    return deps[e.dep]
  end
  if e.want then
    return e.want(obj, deps)
  end
  return _M.at(obj, e[1])
end


local function current(e, cur, deps, obj)
  local h = e.have
  if type(h) == "function" then
    h = h(cur, deps, obj)
  elseif h ~= nil then
    h = cur[h]
  end
  if unset(h) then
    return nil
  end
  return h
end


-- The message for entry e of kind, when obj's spec changes what cur has; else nil.
local function check(kind, e, obj, cur, deps)
  local want = wanted(e, obj, deps)
  if unset(want) then
    return nil
  end
  local have = current(e, cur, deps, obj)
  if have == nil and not e.unset_differs then
    return nil
  end
  local same
  if e.same then
    same = e.same(want, have)
  else
    same = want == have
  end
  if same then
    return nil
  end
  local is = e.is or ("the " .. kind:lower() .. " has")
  local says
  if type(is) == "function" then
    says = is(have, want, cur)
  else
    says = is .. " " .. (have == nil and "none" or tostring(have))
  end
  if not e.dep and not e.want and e.spec_says ~= false and type(want) ~= "table" then
    says = says .. ", spec says " .. tostring(want)
  end
  return e[1] .. " is immutable" .. (e.note and (" (" .. e.note .. ")") or "") .. ": " .. says
    .. "; delete and recreate the " .. kind .. " to change it"
end


-- def.immutable(obj, cur, deps) for kind from spec: a function (kept as it is) or a list
-- of entries and functions (above). Raises on a malformed entry, naming it.
function _M.checker(kind, spec)
  if spec == nil or type(spec) == "function" then
    return spec
  end
  if type(spec) ~= "table" then
    error("resource.plugin: 'immutable' must be a table or a function", 3)
  end
  for i, e in ipairs(spec) do
    if type(e) == "table" and type(e[1]) ~= "string" then
      error("resource.plugin: immutable[" .. i .. "] needs the field's path first", 3)
    elseif type(e) ~= "table" and type(e) ~= "function" then
      error("resource.plugin: immutable[" .. i .. "] must be a table or a function", 3)
    end
  end
  return function(obj, cur, deps)
    for _, e in ipairs(spec) do
      local msg
      if type(e) == "function" then
        msg = e(obj, cur, deps or {})
      else
        msg = check(kind, e, obj, cur, deps or {})
      end
      if msg then
        return msg
      end
    end
    return nil
  end
end


return _M
