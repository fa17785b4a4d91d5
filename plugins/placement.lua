-- plugins/placement.lua: kupenstack.io/v1alpha1 Placement -> the placement chart (ks.service).
return require("ks.service").kind {
  kind = "Placement", chart = "placement",
  components = { "api" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" } },
}
