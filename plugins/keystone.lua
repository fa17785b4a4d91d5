-- plugins/keystone.lua: kupenstack.io/v1alpha1 Keystone -> OpenStack-Helm's keystone chart
-- deployed as a release (ks.service). The identity service: everything else waits for it.
return require("ks.service").kind {
  kind = "Keystone", chart = "keystone",
  auth = { "admin" }, -- endpoints.identity.auth users: spec.region goes to their region_name
  openstack = { service = "identity" }, -- its API's version document (ks.service.openstack_health)
  components = { "api" }, jobs = { "db_sync" },
}
