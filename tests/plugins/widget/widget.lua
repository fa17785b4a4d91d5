-- tests/plugins/widget/widget.lua: the example plugin of the fixture tests (`kupenstack
-- plugin test tests/plugins`, plugins/README.md "Testing a plugin") and of the dry runs
-- of tests/e2e/plugin_cli.sh. A Widget's spec.color is looked up at the palette service
-- that the namespace's ConfigMap "palette" names (data.url); its code goes into a
-- ConfigMap "<name>-paint" and into .status; a widget bigger than 10 is also ordered
-- from the palette (POST /orders). Finalize deletes the paint.
local http = require "ks.core.http"
local json = require "ks.core.json"
local kube = require "ks.core.kube"

local tostring = tostring


local CONFIGMAPS = { group = "", version = "v1", kind = "ConfigMap" }


local Widget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  finalizer = "test.kupenstack.io/paint",
  owns = { CONFIGMAPS },
}


local function available(status, reason, message)
  return { type = "Available", status = status, reason = reason, message = message }
end


-- The paint ConfigMap of obj, owned by it (pure: no I/O).
local function paint(obj, hex)
  return {
    apiVersion = "v1", kind = "ConfigMap",
    metadata = {
      name = obj.metadata.name .. "-paint", namespace = obj.metadata.namespace,
      ownerReferences = { {
        apiVersion = "test.kupenstack.io/v1", kind = "Widget", name = obj.metadata.name,
        uid = obj.metadata.uid, controller = true,
      } },
    },
    data = { hex = hex },
  }
end


local function order(url, obj, color)
  local res, err = http.request {
    method = "POST", url = url .. "/orders",
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode { widget = obj.metadata.name, color = color, size = obj.spec.size },
  }
  if not res then
    return nil, "could not order the widget: " .. tostring(err)
  end
  if res.status ~= 201 then
    return nil, "the palette refused the order: HTTP " .. res.status
  end
  return json.decode(res.body).id
end


function Widget.reconcile(obj, ctx)
  local spec = obj.spec or {}
  if not spec.color or spec.color == "" then
    ctx.terminal("spec.color is required", "InvalidSpec")
  end
  local palette = kube.get(CONFIGMAPS, obj.metadata.namespace, "palette")
  if not palette or not palette.data or not palette.data.url then
    return {
      conditions = { available("False", "Waiting", "no ConfigMap palette (data.url) here") },
      requeue_after = 30,
    }
  end
  local url = palette.data.url
  local res, err = http.request { method = "GET", url = url .. "/colors/" .. spec.color }
  if not res then
    return nil, "could not ask the palette: " .. tostring(err)
  end
  if res.status == 404 then
    ctx.terminal("the palette has no color " .. spec.color, "UnknownColor")
  end
  if res.status ~= 200 then
    return nil, "the palette answered HTTP " .. res.status
  end
  local hex = json.decode(res.body).hex
  local status = { hex = hex, size = spec.size or 0 }
  if (spec.size or 0) > 10 then
    local id, oerr = order(url, obj, spec.color)
    if not id then
      return { status = status, error = oerr }
    end
    status.order = id
  end
  local _, aerr = kube.apply(paint(obj, hex), { force = true })
  if aerr then
    return nil, "could not apply the paint: " .. tostring(aerr)
  end
  ctx.event("Normal", "Painted", "painted " .. spec.color .. " (" .. hex .. ")")
  return {
    status = status,
    conditions = { available("True", "Painted", "painted " .. spec.color) },
  }
end


function Widget.finalize(obj)
  local ok, err = kube.delete(CONFIGMAPS, obj.metadata.namespace, obj.metadata.name .. "-paint")
  if not ok and err.code ~= 404 then
    return nil, "could not delete the paint: " .. tostring(err)
  end
  return {}
end


return Widget
