-- tests/lua/shim/cloud.lua: what the openstack specs share: the captured token's catalog
-- (its URLs are those of the captured responses), a clouds.yaml pointing at its Keystone,
-- and connect() on a scripted transport.
local R = require "fixtures.responses"
local json = require "ks.core.json"
local fake = require "shim.fake_transport"

local M = {}

M.token = json.decode(R.keystone_token_created.body).token
M.url = {}
for _, s in ipairs(M.token.catalog) do
  for _, e in ipairs(s.endpoints) do
    if e.interface == "public" then
      M.url[s.type] = e.url
    end
  end
end
M.auth_url = M.url.identity


-- A clouds.yaml with cloud "test" (password, project demo) and "appcred"; extra: more
-- lines for the "test" cloud (indented four spaces).
function M.clouds_yaml(extra)
  return table.concat({
    "clouds:",
    "  test:",
    "    auth:",
    "      auth_url: " .. M.auth_url,
    "      username: demo",
    "      password: kupenstack",
    "      project_name: demo",
    "      user_domain_name: Default",
    "      project_domain_name: Default",
    "    region_name: RegionOne",
    extra or "",
    "  appcred:",
    "    auth_type: v3applicationcredential",
    "    auth:",
    "      auth_url: " .. M.auth_url,
    "      application_credential_id: e0a94ad30af14ac4ba405072b022f59e",
    "      application_credential_secret: s3cret",
  }, "\n")
end


-- A token step: POST /v3/auth/tokens answered with the captured token.
M.TOKEN = { "POST", "/v3/auth/tokens$", R.keystone_token_created }


-- connect() on a fake transport running script; opts are added to connect's. The rate
-- limit and jitter are off unless opts turn them on, so that sleeps are exact.
function M.connect(script, opts)
  local openstack = require "ks.openstack"
  local t = fake.new(script)
  local o = { clouds_yaml = M.clouds_yaml(), cloud = "test", transport = t.transport,
    rate = false, jitter = false }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  local cloud, err = openstack.connect(o)
  assert(cloud, tostring(err))
  return cloud, t
end


return M
