-- Unit tests of ks.openstack.clouds: reading one cloud of a clouds.yaml (no I/O).
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local clouds = require "ks.openstack.clouds"


local function parse(yaml_text, name, extra)
  local opts = { clouds_yaml = yaml_text, cloud = name }
  for k, v in pairs(extra or {}) do
    opts[k] = v
  end
  return clouds.parse(opts)
end


local REAL = [[
clouds:
  kupenstack-admin:
    auth:
      auth_url: http://127.0.0.1:51801/v3
      username: admin
      password: kupenstack
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  kupenstack-demo:
    auth:
      auth_url: http://127.0.0.1:51801/v3
      username: demo
      password: kupenstack
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
]]


describe("ks.openstack.clouds", function()
  it("reads a password cloud of the clouds.yaml tests/env/openstack writes", function()
    local cfg = assert(parse(REAL, "kupenstack-demo"))
    assert.same({
      name = "kupenstack-demo", auth_url = "http://127.0.0.1:51801/v3", method = "password",
      user = { name = "demo", domain = { name = "Default" } }, password = "kupenstack",
      scope = { project = { name = "demo", domain = { name = "Default" } } },
      interface = "public", region = "RegionOne", endpoint_override = {},
    }, cfg)
  end)

  it("scopes to project_id when the caller overrides it", function()
    local cfg = assert(parse(REAL, "kupenstack-demo", { project_id = "p1" }))
    assert.same({ project = { id = "p1" } }, cfg.scope)
  end)

  it("takes the only cloud when none is named, and refuses to guess among several", function()
    local one = "clouds:\n  only:\n    auth:\n      auth_url: http://k:5000\n"
      .. "      user_id: u1\n      password: p\n      project_id: p1\n"
    local cfg = assert(parse(one, nil))
    assert.same({ "only", "http://k:5000/v3", { id = "u1" }, { project = { id = "p1" } } },
      { cfg.name, cfg.auth_url, cfg.user, cfg.scope })
    local _, err = parse(REAL, nil)
    assert.equal("invalid", err.kind)
    assert.truthy(tostring(err):find("kupenstack%-admin, kupenstack%-demo"))
  end)

  it("names the clouds there are when the one asked for is missing", function()
    local _, err = parse(REAL, "nope")
    assert.equal("clouds.yaml: cloud 'nope': not in clouds.yaml (it has: kupenstack-admin, "
      .. "kupenstack-demo)", err.message)
  end)

  it("refuses verify: false with a message saying what to do instead", function()
    local _, err = parse(REAL:gsub("    identity_api_version: 3\n  kupenstack%-demo",
      "    verify: false\n  kupenstack-demo"), "kupenstack-admin")
    assert.equal("invalid", err.kind)
    assert.truthy(err.message:find("verify: false is refused", 1, true))
    assert.truthy(err.message:find("set cacert", 1, true))
  end)

  it("passes cacert, cert and key on as files for the transport", function()
    local text = REAL:gsub("    interface: public\n    identity_api_version: 3\n  kupenstack%-demo",
      "    cacert: /etc/ca.pem\n    cert: /etc/c.pem\n    key: /etc/k.pem\n  kupenstack-demo")
    local cfg = assert(parse(text, "kupenstack-admin"))
    assert.same({ "/etc/ca.pem", "/etc/c.pem", "/etc/k.pem" },
      { cfg.ca_file, cfg.cert_file, cfg.key_file })
  end)

  it("reads application credentials by id, and refuses a project_id override", function()
    local text = "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    auth:\n"
      .. "      auth_url: https://k/identity/v3/\n      application_credential_id: a1\n"
      .. "      application_credential_secret: s\n"
    local cfg = assert(parse(text, "ac"))
    assert.same({ "application_credential", { id = "a1", secret = "s" }, nil, "https://k/identity/v3" },
      { cfg.method, cfg.appcred, cfg.scope, cfg.auth_url })
    local _, err = parse(text, "ac", { project_id = "p" })
    assert.truthy(err.message:find("bound to one project", 1, true))
  end)

  it("reads application credentials by name with their user", function()
    local text = "clouds:\n  ac:\n    auth:\n      auth_url: https://k/v3\n"
      .. "      application_credential_name: n\n      application_credential_secret: s\n"
      .. "      username: demo\n      user_domain_id: default\n"
    local cfg = assert(parse(text, "ac"))
    assert.same({ name = "n", secret = "s", user = { name = "demo", domain = { id = "default" } } },
      cfg.appcred)
  end)

  it("says which field is missing", function()
    local text = "clouds:\n  c:\n    auth:\n      auth_url: http://k/v3\n      username: u\n"
    local _, err = parse(text, "c")
    assert.equal("clouds.yaml: cloud 'c': auth.password is required for password authentication",
      err.message)
    _, err = parse("clouds:\n  c:\n    region_name: R\n", "c")
    assert.equal("clouds.yaml: cloud 'c': no auth section", err.message)
  end)

  it("refuses Keystone v2 and unknown auth types", function()
    local _, err = parse(REAL:gsub("identity_api_version: 3", "identity_api_version: 2"),
      "kupenstack-demo")
    assert.truthy(err.message:find("Keystone v3 only", 1, true))
    _, err = parse("clouds:\n  c:\n    auth_type: token\n    auth:\n      auth_url: http://k\n", "c")
    assert.truthy(err.message:find("auth_type token is not supported", 1, true))
  end)

  it("reports text that is not YAML", function()
    local _, err = parse("clouds: [unclosed", "c")
    assert.truthy(err.message:find("^could not parse clouds.yaml"))
  end)

  it("keeps endpoint overrides by service type and the interface without URL", function()
    local text = REAL:gsub("    interface: public\n    identity_api_version: 3\n  kupenstack%-demo",
      "    interface: internalURL\n    block_storage_endpoint_override: http://c/v3\n"
      .. "    regions: [R2, R3]\n  kupenstack-demo"):gsub("    region_name: RegionOne\n", "", 1)
    local cfg = assert(parse(text, "kupenstack-admin"))
    assert.same({ "internal", "R2", { ["block-storage"] = "http://c/v3" } },
      { cfg.interface, cfg.region, cfg.endpoint_override })
  end)

  it("lets the caller's endpoint_override win over the clouds.yaml's", function()
    local text = REAL:gsub("    identity_api_version: 3\n  kupenstack%-demo",
      "    identity_api_version: 3\n    compute_endpoint_override: http://yaml/v2.1\n"
      .. "    image_endpoint_override: http://yaml-image\n  kupenstack-demo")
    local cfg = assert(parse(text, "kupenstack-admin",
      { endpoint_override = { compute = "http://proxy:8080/v2.1", block_storage = "http://c/v3" } }))
    assert.same({ compute = "http://proxy:8080/v2.1", image = "http://yaml-image",
      ["block-storage"] = "http://c/v3" }, cfg.endpoint_override)
  end)

  it("gives equal keys to equal credentials only", function()
    local a = assert(parse(REAL, "kupenstack-demo"))
    local b = assert(parse(REAL, "kupenstack-demo", { project_id = "other" }))
    local c = assert(parse(REAL, "kupenstack-admin"))
    assert.equal(clouds.key(a), clouds.key(b))
    assert.are_not.equal(clouds.key(a), clouds.key(c))
  end)
end)
