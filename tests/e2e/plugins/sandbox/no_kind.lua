-- tests/e2e/plugins/sandbox/no_kind.lua: a plugin table without 'kind'.
return {
  api = 1,
  group = "test.kupenstack.io",
  version = "v1",
  reconcile = function() return {} end,
}
