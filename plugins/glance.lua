-- plugins/glance.lua: kupenstack.io/v1alpha1 Glance -> the glance chart (ks.service).
return require("ks.service").kind {
  kind = "Glance", chart = "glance",
  auth = { "admin", "glance" }, -- endpoints.identity.auth users: spec.region goes to their region_name
  openstack = { service = "image" }, -- its API's version document (ks.service.openstack_health)
  components = { "api" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" } },
}
