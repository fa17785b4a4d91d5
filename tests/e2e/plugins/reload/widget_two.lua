-- tests/e2e/plugins/reload/widget_two.lua: version "two" of the Widget plugin that
-- plugins.sh swaps in and out of a running host; it writes status.version = "two", and
-- takes 3 s (or spec.wait s) over a Widget whose spec.color is "slow".
local time = require "ks.core.time"


return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  reconcile = function(obj, ctx)
    if obj.spec.color == "slow" then
      ctx.log.info("e2e slow start", { version = "two", generation = obj.metadata.generation })
      time.sleep(obj.spec.wait or 3)
      ctx.log.info("e2e slow end", { version = "two", generation = obj.metadata.generation })
    end
    return {
      status = { version = "two", size = obj.spec.size or 0 },
      conditions = { { type = "Available", status = "True", reason = "E2EReady", message = "two" } },
    }
  end,
}
