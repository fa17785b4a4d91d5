-- tests/e2e/plugins/reload/gadget.lua: a Gadget plugin with 'watches' and 'owns'
-- (plugins.sh). Gadget NAME copies data.value of ConfigMap "input-NAME" (watched: a
-- change re-reconciles the Gadget) into its status and into ConfigMap "NAME-child",
-- which it owns (deleting it makes the Gadget reconcile and apply it again).
local kube = require "ks.core.kube"


local CM = { group = "", version = "v1", kind = "ConfigMap" }


local function input_of(cm)
  local name = cm.metadata.name
  if name:sub(1, 6) == "input-" then
    return { cm.metadata.namespace .. "/" .. name:sub(7) }
  end
  return {}
end


local Gadget = {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gadget",
  owns = { CM },
  watches = { { group = "", version = "v1", kind = "ConfigMap", map = input_of } },
}


function Gadget.reconcile(obj, ctx)
  local ns, name = obj.metadata.namespace, obj.metadata.name
  local input = kube.get(CM, ns, "input-" .. name)
  local value = input and input.data and input.data.value or "none"
  local child, err = kube.apply({
    apiVersion = "v1",
    kind = "ConfigMap",
    metadata = {
      name = name .. "-child",
      namespace = ns,
      ownerReferences = { {
        apiVersion = "test.kupenstack.io/v1", kind = "Gadget", name = name,
        uid = obj.metadata.uid, controller = true, blockOwnerDeletion = true,
      } },
    },
    data = { copied = value },
  })
  if not child then
    return nil, "could not apply the child: " .. tostring(err)
  end
  ctx.log.info("e2e gadget", { value = value, child = child.metadata.uid })
  return {
    status = { copied = value, child = child.metadata.uid },
    conditions = { { type = "Available", status = "True", reason = "E2EReady", message = value } },
  }
end


return Gadget
