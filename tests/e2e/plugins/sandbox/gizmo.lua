-- tests/e2e/plugins/sandbox/gizmo.lua: a valid plugin, which plugins.sh compiles to
-- bytecode (luajit -b) to see the bytecode refused.
return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  kind = "Gizmo",
  reconcile = function() return {} end,
}
