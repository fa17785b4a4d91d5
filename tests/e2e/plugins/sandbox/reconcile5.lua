-- tests/e2e/plugins/sandbox/reconcile5.lua: 'reconcile' is not a function.
return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gizmo",
  reconcile = 5,
}
