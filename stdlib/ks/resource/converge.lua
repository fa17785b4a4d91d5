-- ks/resource/converge.lua: the drift path of ks.resource, once the resource is in hand:
-- self-healing (def.recover), the fields the spec may not change (def.immutable), the
-- update in place (def.update), and what def.observe says made into status and conditions.
--
--   local res = converge.converge(def, cloud, cur, obj, ctx, deps, adopted)
--
-- An adopted resource (spec.import) is neither recovered nor checked against the spec; an
-- unmanaged one is not updated.
local fault = require "ks.core.fault"
local pace = require "ks.resource.pace"
local result = require "ks.resource.result"


local _M = {}


local function managed(spec)
  return (spec.managementPolicy or "managed") == "managed"
end


-- The result for what def.observe says of cur, status kept.
function _M.observed(def, cur, obj, status)
  local fields, state, message = def.observe(cur, obj)
  status.resource = fields
  if state == "available" then
    return { status = status, conditions = result.available(message) }
  end
  if state == "error" then
    return { status = status, conditions = result.errored(message), requeue_after = 60 }
  end
  return { status = status, conditions = result.progressing("Progressing", message),
           requeue_after = pace.interval(def, obj) }
end


-- def.update, when managed: cur' (changed or not), or nil and the result to return.
local function update(def, cloud, cur, obj, ctx, deps, status)
  local upd, uerr = def.update(cloud, cur, obj, deps)
  if not upd or uerr == true then
    pace.wrote(def, cur.id)
  end
  if not upd then
    return nil, result.failed(uerr, status)
  end
  if uerr then
    fault.point(def.kind, "updated") -- OpenStack changed, nothing recorded yet
    ctx.event("Normal", "Updated", "updated " .. def.kind .. " " .. upd.id)
  end
  return upd
end


-- The reconcile's result once cur, obj's resource, is in hand.
function _M.converge(def, cloud, cur, obj, ctx, deps, adopted)
  local spec = obj.spec or {}
  if def.recover and not adopted and not spec.import and managed(spec) then
    local now, res = def.recover(cloud, cur, obj, ctx, deps)
    if not now then
      res.status = res.status or { id = cur.id, resource = def.observe(cur, obj) }
      return res
    end
    cur = now
  end
  local status = { id = cur.id, projectID = cur.project_id or cur.tenant_id or cur.owner }
  if def.immutable and not adopted then
    local msg = def.immutable(obj, cur, deps)
    if msg then
      status.resource = def.observe(cur, obj)
      return result.terminal(msg, status)
    end
  end
  if def.update and managed(spec) then
    local res
    cur, res = update(def, cloud, cur, obj, ctx, deps, status)
    if not cur then
      return res
    end
  end
  return _M.observed(def, cur, obj, status)
end


return _M
