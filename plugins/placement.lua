-- plugins/placement.lua: kupenstack.io/v1alpha1 Placement -> the placement chart (ks.service).
return require("ks.service").kind {
  kind = "Placement", chart = "placement",
  auth = { "admin", "placement" }, -- endpoints.identity.auth users: spec.region goes to their region_name
  openstack = { service = "placement" }, -- its API's version document (ks.service.openstack_health)
  components = { "api" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" } },
}
