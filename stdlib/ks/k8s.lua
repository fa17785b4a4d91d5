-- ks/k8s.lua: the Kubernetes helpers plugins share: conditions, finalizers, owner
-- references, labels and selectors, desired objects for kube.apply, and deep copy, equal
-- and merge of JSON values. Pure functions, no I/O: nothing here changes its arguments,
-- every "set" returns a new value.
--
--   local k8s = require "ks.k8s"
--   if not k8s.is_true(obj, "Ready") then ... end
--   local cm = k8s.desired(obj, { apiVersion = "v1", kind = "ConfigMap",
--                                 metadata = { name = obj.metadata.name .. "-conf" },
--                                 data = { ["a.conf"] = "..." } })
--   kube.apply(cm)
--
-- JSON values are what the host hands a plugin: objects are tables, arrays are tables
-- marked by json.array (decoded ones are marked already), null is json.null.
local json = require "ks.core.json"

local type = type
local pairs = pairs
local ipairs = ipairs
local error = error
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local os_date = os.date
local null = json.null
local array = json.array


local _M = {}


-- ---- JSON values -----------------------------------------------------------------------

local function is_marked_array(t)
  local mt = getmetatable(t)
  return type(mt) == "table" and mt.__jsontype == "array"
end


-- Is v a JSON array: a marked table, or a plain one with keys 1..n (n > 0)?
function _M.is_array(v)
  if type(v) ~= "table" or v == null then
    return false
  end
  return is_marked_array(v) or v[1] ~= nil
end


-- Is v a JSON object (a table that is neither an array nor null)?
function _M.is_object(v)
  return type(v) == "table" and v ~= null and not _M.is_array(v)
end


-- A deep copy of v. Arrays stay marked as arrays; json.null stays json.null; other
-- values are returned as they are.
function _M.copy(v)
  if type(v) ~= "table" or v == null then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = _M.copy(x)
  end
  if is_marked_array(v) then
    setmetatable(out, getmetatable(v))
  end
  return out
end


-- Are a and b the same JSON value, at any depth? Array marks are not compared, so an
-- empty array equals an empty object ({} built in Lua matches [] decoded).
function _M.equal(a, b)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" or a == null or b == null then
    return false
  end
  for k, v in pairs(a) do
    if not _M.equal(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end


-- target with patch merged in, as a JSON merge patch (RFC 7386) does it: an object
-- patch merges key by key, json.null deletes a key, anything else (arrays included)
-- replaces. Returns a new value; neither argument is changed.
function _M.merge(target, patch)
  if not _M.is_object(patch) then
    return _M.copy(patch)
  end
  local out = _M.is_object(target) and _M.copy(target) or {}
  for k, v in pairs(patch) do
    if v == null then
      out[k] = nil
    else
      out[k] = _M.merge(out[k], v)
    end
  end
  return out
end


-- ---- conditions ------------------------------------------------------------------------

-- The conditions of x: an object (its status.conditions) or already a list.
local function conditions_of(x)
  if type(x) ~= "table" then
    return {}
  end
  if x.metadata ~= nil or x.status ~= nil or x.kind ~= nil or x.apiVersion ~= nil then
    local st = x.status
    return (type(st) == "table" and type(st.conditions) == "table") and st.conditions or {}
  end
  return x
end


local function find(conds, ctype)
  for i, c in ipairs(conds) do
    if type(c) == "table" and c.type == ctype then
      return c, i
    end
  end
  return nil
end


-- The condition ctype of x (an object or a list of conditions), or nil.
function _M.get_condition(x, ctype)
  return (find(conditions_of(x), ctype))
end


-- Is condition ctype of x (an object or a list of conditions) there with status "True"?
function _M.is_true(x, ctype)
  local c = _M.get_condition(x, ctype)
  return c ~= nil and c.status == "True"
end


-- Now as a Kubernetes timestamp (UTC, to the second).
function _M.now()
  return os_date("!%Y-%m-%dT%H:%M:%SZ")
end


-- conds (a list, or an object's status.conditions) with want set, the way the host sets
-- the conditions a reconcile returns: status defaults to "Unknown", reason to the status,
-- an empty message is left out, lastTransitionTime is kept from the condition it
-- replaces while the status stays the same and is opts.now (default: now) otherwise,
-- observedGeneration is opts.generation (default: the object's metadata.generation) when
-- that is > 0. Replaces the condition of the same type in place, or appends. Returns a new
-- list.
function _M.set_condition(conds, want, opts)
  if type(want) ~= "table" or type(want.type) ~= "string" then
    error("set_condition: want.type must be a string", 2)
  end
  opts = opts or {}
  local old = conditions_of(conds)
  local status = want.status or "Unknown"
  local prev, at = find(old, want.type)
  local since = opts.now or _M.now()
  if prev and prev.status == status and prev.lastTransitionTime then
    since = prev.lastTransitionTime
  end
  local c = { type = want.type, status = status, reason = want.reason or status,
              lastTransitionTime = since }
  if want.message and want.message ~= "" then
    c.message = want.message
  end
  local gen = opts.generation
  if gen == nil and type(conds) == "table" and type(conds.metadata) == "table" then
    gen = conds.metadata.generation
  end
  if type(gen) == "number" and gen > 0 then
    c.observedGeneration = gen
  end
  local out = array({})
  for i, x in ipairs(old) do
    out[i] = _M.copy(x)
  end
  out[at or #out + 1] = c
  return out
end


-- ---- finalizers ------------------------------------------------------------------------

local function finalizers(obj)
  local m = obj.metadata
  return (type(m) == "table" and type(m.finalizers) == "table") and m.finalizers or {}
end


-- Does obj carry finalizer name?
function _M.has_finalizer(obj, name)
  for _, f in ipairs(finalizers(obj)) do
    if f == name then
      return true
    end
  end
  return false
end


-- A copy of obj with finalizer name (appended when it is not there yet).
function _M.add_finalizer(obj, name)
  local out = _M.copy(obj)
  out.metadata = out.metadata or {}
  if not _M.has_finalizer(obj, name) then
    local list = array({})
    for i, f in ipairs(finalizers(obj)) do
      list[i] = f
    end
    list[#list + 1] = name
    out.metadata.finalizers = list
  end
  return out
end


-- A copy of obj without finalizer name (an empty list when it was the last).
function _M.remove_finalizer(obj, name)
  local out = _M.copy(obj)
  local list = array({})
  for _, f in ipairs(finalizers(obj)) do
    if f ~= name then
      list[#list + 1] = f
    end
  end
  if out.metadata and out.metadata.finalizers ~= nil then
    out.metadata.finalizers = list
  end
  return out
end


-- ---- owner references ------------------------------------------------------------------

-- An ownerReference to obj. opts.controller marks it the managing controller,
-- opts.block sets blockOwnerDeletion (foreground deletion waits for the child).
-- obj must have apiVersion, kind, metadata.name and metadata.uid (raises otherwise).
function _M.owner_ref(obj, opts)
  local m = type(obj) == "table" and obj.metadata
  if type(m) ~= "table" or type(m.uid) ~= "string" or type(m.name) ~= "string"
      or type(obj.apiVersion) ~= "string" or type(obj.kind) ~= "string" then
    error("owner_ref: the owner needs apiVersion, kind, metadata.name and metadata.uid", 2)
  end
  opts = opts or {}
  local ref = { apiVersion = obj.apiVersion, kind = obj.kind, name = m.name, uid = m.uid }
  if opts.controller then
    ref.controller = true
  end
  if opts.block then
    ref.blockOwnerDeletion = true
  end
  return ref
end


-- Is child owned by owner (an ownerReference to owner's UID)? opts.controller: and is
-- owner its controller?
function _M.is_owned_by(child, owner, opts)
  local m, om = child and child.metadata, owner and owner.metadata
  if type(m) ~= "table" or type(om) ~= "table" or om.uid == nil
      or type(m.ownerReferences) ~= "table" then
    return false
  end
  for _, r in ipairs(m.ownerReferences) do
    if r.uid == om.uid and (not (opts and opts.controller) or r.controller == true) then
      return true
    end
  end
  return false
end


-- The ownerReference of child's controller, or nil.
function _M.controller_of(child)
  local m = child and child.metadata
  for _, r in ipairs(type(m) == "table" and m.ownerReferences or {}) do
    if r.controller == true then
      return r
    end
  end
  return nil
end


-- ---- labels and selectors ----------------------------------------------------------------

-- obj's labels ({} when none).
function _M.labels(obj)
  local m = type(obj) == "table" and obj.metadata
  return (type(m) == "table" and type(m.labels) == "table") and m.labels or {}
end


-- Does obj carry every label of labels ({k = v}; {} matches everything)?
function _M.matches(obj, labels)
  local have = _M.labels(obj)
  for k, v in pairs(labels or {}) do
    if have[k] ~= v then
      return false
    end
  end
  return true
end


local function contains(list, v)
  for _, x in ipairs(list or {}) do
    if x == v then
      return true
    end
  end
  return false
end


local OPERATORS = {
  In = function(have, values) return have ~= nil and contains(values, have) end,
  NotIn = function(have, values) return have == nil or not contains(values, have) end,
  Exists = function(have) return have ~= nil end,
  DoesNotExist = function(have) return have == nil end,
}


-- Does obj match a metav1.LabelSelector ({matchLabels =, matchExpressions =})? An empty
-- selector matches everything. Raises on an unknown operator.
function _M.matches_selector(obj, selector)
  if not _M.matches(obj, selector.matchLabels) then
    return false
  end
  local have = _M.labels(obj)
  for _, e in ipairs(selector.matchExpressions or {}) do
    local op = OPERATORS[e.operator]
    if not op then
      error("matches_selector: unknown operator " .. tostring(e.operator), 2)
    end
    if not op(have[e.key], e.values) then
      return false
    end
  end
  return true
end


-- ---- desired objects -------------------------------------------------------------------

-- What kube.apply needs to name obj itself: apiVersion, kind, metadata.name and
-- .namespace, with fields (deep-copied) added:
--   kube.apply(k8s.for_apply(obj, { metadata = { labels = { x = "y" } } }))
function _M.for_apply(obj, fields)
  local out = _M.copy(fields) or {}
  out.apiVersion, out.kind = obj.apiVersion, obj.kind
  out.metadata = _M.merge(out.metadata, { name = obj.metadata.name,
                                          namespace = obj.metadata.namespace })
  return out
end


-- The object to kube.apply for a child of parent: a copy of desc (apiVersion, kind,
-- metadata.name, the rest) with metadata.name defaulted to the parent's, metadata.namespace
-- to the parent's (unless opts.cluster: a cluster-scoped kind), and parent as its
-- controller (an ownerReference with controller and blockOwnerDeletion; unless
-- opts.owner == false), after any ownerReferences desc has to other owners. Raises when
-- desc has no apiVersion or kind, or when the owner reference cannot be valid (a
-- namespaced parent owns only children in its own namespace).
function _M.desired(parent, desc, opts)
  opts = opts or {}
  if type(desc) ~= "table" or type(desc.apiVersion) ~= "string" or type(desc.kind) ~= "string" then
    error("desired: desc needs apiVersion and kind", 2)
  end
  local out = _M.copy(desc)
  local pm = parent.metadata
  local m = out.metadata or {}
  out.metadata = m
  m.name = m.name or pm.name
  if opts.cluster then
    m.namespace = nil
  else
    m.namespace = m.namespace or pm.namespace
  end
  if opts.owner ~= false then
    if pm.namespace and m.namespace ~= pm.namespace then
      error("desired: " .. parent.kind .. " " .. pm.namespace .. "/" .. pm.name
        .. " cannot own an object outside its namespace", 2)
    end
    local refs = array({})
    for _, r in ipairs(m.ownerReferences or {}) do
      if r.uid ~= pm.uid then
        refs[#refs + 1] = r
      end
    end
    refs[#refs + 1] = _M.owner_ref(parent, { controller = true, block = true })
    m.ownerReferences = refs
  end
  return out
end


return _M
