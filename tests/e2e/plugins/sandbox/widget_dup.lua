-- tests/e2e/plugins/sandbox/widget_dup.lua: a second plugin for Widget, which the host
-- must refuse while widget.lua reconciles the kind.
return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Widget",
  reconcile = function(obj)
    return { status = { plugin = "duplicate", color = obj.spec.color } }
  end,
}
