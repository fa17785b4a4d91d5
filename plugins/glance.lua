-- plugins/glance.lua: kupenstack.io/v1alpha1 Glance -> the glance chart (ks.service).
return require("ks.service").kind {
  kind = "Glance", chart = "glance",
  components = { "api" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" } },
}
