-- tests/e2e/plugins/reload/widget_one.lua: version "one" of the Widget plugin that
-- plugins.sh swaps in and out of a running host; it writes status.version = "one", and
-- takes 3 s over a Widget whose spec.color is "slow".
local time = require "ks.core.time"


return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  reconcile = function(obj, ctx)
    if obj.spec.color == "slow" then
      ctx.log.info("e2e slow start", { version = "one", generation = obj.metadata.generation })
      time.sleep(3)
      ctx.log.info("e2e slow end", { version = "one", generation = obj.metadata.generation })
    end
    return {
      status = { version = "one", size = obj.spec.size or 0 },
      conditions = { { type = "Available", status = "True", reason = "E2EReady", message = "one" } },
    }
  end,
}
