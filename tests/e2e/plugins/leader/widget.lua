-- tests/e2e/plugins/leader/widget.lua: the Widget plugin of leader.sh. It writes into
-- status.by the setting cluster (--set cluster=NAME) of the host that ran it, so the object says who
-- reconciled it, and logs "e2e reconcile" for the script to count.
local config = require "ks.core.config"


return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  reconcile = function(obj, ctx)
    local by = config.get("cluster")
    ctx.log.info("e2e reconcile", { by = by })
    return {
      status = { by = by, size = obj.spec.size or 0 },
      conditions = { { type = "Available", status = "True", reason = "E2EReady", message = by } },
    }
  end,
}
