-- plugins/neutron.lua: kupenstack.io/v1alpha1 Neutron -> the neutron chart (ks.service). It
-- comes with Nova: its server notifies Nova's API of port changes.
return require("ks.service").kind {
  kind = "Neutron", chart = "neutron",
  -- the endpoints.identity.auth users: spec.region goes to their region_name
  auth = { "admin", "neutron", "nova", "placement" },
  openstack = { service = "network", check = "agents" }, -- its agents report alive
  components = { "server" }, jobs = { "db_sync" },
  depends = { Keystone = { "api" }, Nova = { "api" } },
}
