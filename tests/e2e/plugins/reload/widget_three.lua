-- tests/e2e/plugins/reload/widget_three.lua: version "three" of the Widget plugin that
-- plugins.sh swaps in and out of a running host; it writes status.version = "three", and
-- takes 3 s over a Widget whose spec.color is "slow".
local time = require "ks.core.time"


return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  concurrency = 2, -- a new shape: the host needs a new controller for it
  reconcile = function(obj, ctx)
    if obj.spec.color == "slow" then
      ctx.log.info("e2e slow start", { version = "three", generation = obj.metadata.generation })
      time.sleep(3)
      ctx.log.info("e2e slow end", { version = "three", generation = obj.metadata.generation })
    end
    return {
      status = { version = "three", size = obj.spec.size or 0 },
      conditions = { { type = "Available", status = "True", reason = "E2EReady", message = "three" } },
    }
  end,
}
