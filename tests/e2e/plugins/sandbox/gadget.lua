-- tests/e2e/plugins/sandbox/gadget.lua: the other plugin of plugins.sh's sandbox host,
-- which must keep working whatever the Widget plugin does.
return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gadget",
  reconcile = function(obj)
    return {
      status = { seen = obj.spec.size or 0 },
      conditions = { { type = "Available", status = "True", reason = "E2EReady", message = "seen" } },
    }
  end,
}
