-- tests/lua/shim/resource.lua: what the specs of ks.resource and its parts share: a kube
-- stub answering from `objects` (by kind), an object, a ctx recording its Events, and a
-- kind (def) on a scripted cloud. Require it after shim.core and before ks.resource.
local errors = require "ks.openstack.errors"

local _M = { objects = {} }
local objects = _M.objects


package.preload["ks.core.kube"] = function()
  return {
    list = function(res, opts)
      local out = {}
      for _, o in ipairs(objects[res.kind] or {}) do
        if not (opts and opts.namespace) or o.metadata.namespace == opts.namespace then
          out[#out + 1] = o
        end
      end
      return out
    end,
    get = function(res, ns, name)
      for _, o in ipairs(objects[res.kind] or {}) do
        if o.metadata.name == name and o.metadata.namespace == ns then
          return o
        end
      end
    end,
  }
end
package.preload["ks.core.config"] = function() return { get = function() return nil end } end


_M.NOT_FOUND = errors.new({ kind = "not_found", status = 404, message = "gone" })


-- No objects of any kind.
function _M.clear()
  for k in pairs(objects) do
    objects[k] = nil
  end
end


-- An object of namespace ns named n1 (uid u1) with spec, and extra's fields (status, ...).
function _M.obj(spec, extra)
  local o = { metadata = { name = "n1", namespace = "ns", uid = "u1", generation = 1 },
              spec = spec or {} }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end


-- The condition of type t among conds.
function _M.by_type(conds, t)
  for _, c in ipairs(conds or {}) do
    if c.type == t then
      return c
    end
  end
end


-- A ctx recording its Events (ctx.events: { type =, reason =, message = }).
function _M.ctx_of()
  local ctx = { events = {} }
  function ctx.event(type, reason, message)
    ctx.events[#ctx.events + 1] = { type = type, reason = reason, message = message }
  end
  return ctx
end


-- ctx's Events as "Reason: message" lines.
function _M.said(ctx)
  local out = {}
  for i, e in ipairs(ctx.events) do
    out[i] = e.reason .. ": " .. e.message
  end
  return out
end


-- A kind on a scripted cloud, with extra's fields: store holds the resources by id; calls
-- records what was asked. Returns def, store, calls.
function _M.scripted(extra)
  local store, calls = {}, {}
  local d = {
    kind = "Widget",
    get = function(_, id)
      calls[#calls + 1] = "get " .. id
      if store[id] then
        return store[id]
      end
      return nil, _M.NOT_FOUND
    end,
    find_own = function(_, o)
      calls[#calls + 1] = "find_own"
      for _, r in pairs(store) do
        if r.tag == "kupenstack-uid-" .. o.metadata.uid then
          return r
        end
      end
      return nil
    end,
    find = function(_, filter)
      calls[#calls + 1] = "find"
      local out = {}
      for _, r in pairs(store) do
        if r.name == filter.name then
          out[#out + 1] = r
        end
      end
      table.sort(out, function(a, b) return a.id < b.id end)
      return out
    end,
    create = function(_, o)
      calls[#calls + 1] = "create"
      local want = o.spec.resource or {}
      local r = { id = "w1", name = want.name or o.metadata.name, tag = "kupenstack-uid-" .. o.metadata.uid,
                  project_id = "p1", size = want.size }
      store[r.id] = r
      return r
    end,
    delete = function(_, cur)
      calls[#calls + 1] = "delete " .. cur.id
      store[cur.id] = nil
      return true
    end,
    observe = function(cur)
      return { name = cur.name, size = cur.size }, "available", "widget " .. cur.id .. " is ready"
    end,
  }
  for k, v in pairs(extra or {}) do
    d[k] = v
  end
  return d, store, calls
end


-- scripted(extra) whose cloud holds resources (by id) already. Returns def, calls.
function _M.holding(resources, extra)
  local d, store, calls = _M.scripted(extra)
  for id, r in pairs(resources) do
    store[id] = r
  end
  return d, calls
end


return _M
