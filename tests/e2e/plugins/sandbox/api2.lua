-- tests/e2e/plugins/sandbox/api2.lua: a contract version this host does not speak.
return {
  api = 2,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gizmo",
  reconcile = function() return {} end,
}
