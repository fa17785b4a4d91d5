-- plugins/nova.lua: kupenstack.io/v1alpha1 Nova -> the nova chart (ks.service). Its API
-- needs Keystone's, its scheduler Placement's, its compute Glance's images.
return require("ks.service").kind {
  kind = "Nova", chart = "nova",
  -- the endpoints.identity.auth users: spec.region goes to their region_name
  auth = { "admin", "nova", "neutron", "placement" },
  openstack = { service = "compute", check = "services" }, -- os-services report up
  components = { "api", "conductor", "scheduler" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" }, Glance = { "api" }, Placement = { "api" } },
}
