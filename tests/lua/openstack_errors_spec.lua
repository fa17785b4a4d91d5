-- Unit tests of ks.openstack.errors: parsing the error bodies of every service and the
-- classification. The bodies are real responses of tests/env/openstack, captured by
-- tests/lua/fixtures/capture.py; no service is called here.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local R = require "fixtures.responses"
local errors = require "ks.openstack.errors"


local function classify(name, service)
  local r = R[name]
  return errors.from_response({ service = service, method = "GET", path = "/x",
    url = "http://127.0.0.1/x" }, r, 1795000000)
end


describe("ks.openstack.errors", function()
  -- name, service, code, kind, retryable, backoff, message
  local cases = {
    { "nova_server_not_found", "compute", "itemNotFound", "not_found", false, nil,
      "^Instance %x+%-.* could not be found%.$" },
    { "nova_bad_request", "compute", "badRequest", "invalid", false, nil,
      "'flavorRef' is a required property$" },
    { "nova_forbidden", "compute", "forbidden", "forbidden", false, nil,
      "^Policy doesn't allow os_compute_api:os%-hypervisors:list to be performed%.$" },
    { "nova_quota_exceeded", "compute", "forbidden", "quota", true, 60,
      "^Quota exceeded for instances: Requested 1, but already used 1 of 1 instances$" },
    { "nova_unauthorized", "compute", "Unauthorized", "unauthorized", false, nil,
      "^The request you have made requires authentication%.$" },
    { "nova_microversion_unsupported", "compute", "computeFault", "invalid", false, nil,
      "^Version 9%.99 is not supported by the API%. Minimum is 2%.1 and maximum is 2%.93%.$" },
    { "nova_action_while_stopping", "compute", "conflictingRequest", "conflict", true, nil,
      "while it is in task_state powering%-off$" },
    { "nova_action_refused", "compute", "conflictingRequest", "conflict", false, nil,
      "while it is in vm_state active$" },
    { "nova_unknown_route", "compute", "Not Found", "not_found", false, nil,
      "^The resource could not be found%.$" },
    { "neutron_network_not_found", "network", "NetworkNotFound", "not_found", false, nil,
      "^Network .* could not be found%.$" },
    { "neutron_network_in_use", "network", "NetworkInUse", "conflict", true, nil,
      "^Unable to complete operation on network .*There are one or more ports still in use" },
    { "neutron_over_quota", "network", "OverQuota", "quota", true, 60,
      "^Quota exceeded for resources: %['network'%]%.$" },
    { "neutron_bad_request", "network", "InvalidInput", "invalid", false, nil,
      "^Invalid input for operation: 10%.0%.0%.0/99 is not in a CIDR format%.$" },
    { "neutron_forbidden", "network", "PolicyNotAuthorized", "forbidden", false, nil,
      "is disallowed by policy$" },
    { "glance_image_not_found", "image", "Not Found", "not_found", false, nil,
      "^No image found with ID [%x%-]+$" },
    { "glance_bad_request", "image", "Bad Request", "invalid", false, nil,
      "^Provided object does not match schema 'image': 'bogus' is not one of %[None, .*'ploop'%]$" },
    { "glance_upload_conflict", "image", "Conflict", "conflict", false, nil,
      "^Image status transition from active to saving is not allowed$" },
    { "glance_unknown_route_text", "image", "Not Found", "not_found", false, nil,
      "^The resource could not be found%.$" },
    { "glance_unknown_route_html", "image", "Not Found", "not_found", false, nil,
      "^The resource could not be found%.$" },
    { "glance_patch_media_type_html", "image", "Unsupported Media Type", "invalid", false, nil,
      "^The request media type application/json is not supported by this server%.$" },
    { "keystone_project_not_found", "identity", "Not Found", "not_found", false, nil,
      "^Could not find project: %x+%.$" },
    { "keystone_token_wrong_password", "identity", "Unauthorized", "unauthorized", false, nil,
      "^The request you have made requires authentication%.$" },
    { "keystone_users_forbidden", "identity", "Forbidden", "forbidden", false, nil,
      "identity:list_users%.$" },
    { "cinder_volume_not_found", "volumev3", "itemNotFound", "not_found", false, nil,
      "^Volume [%x%-]+ could not be found%.$" },
    { "cinder_over_quota", "volumev3", "overLimit", "quota", true, 60,
      "^VolumeLimitExceeded: Maximum number of volumes allowed %(0%) exceeded for quota 'volumes'%.$" },
    { "cinder_bad_request", "volumev3", "badRequest", "invalid", false, nil,
      "^Invalid input for field/attribute size%. Value: %-1%. %-1 is less than the minimum of 1$" },
    { "placement_not_found", "placement", "Not Found", "not_found", false, nil,
      "^The resource could not be found%. No resource provider with uuid [%x%-]+ found$" },
  }
  for _, c in ipairs(cases) do
    local name, service, code, kind, retryable, backoff, message = unpack(c, 1, 7)
    it("classifies the real " .. name .. " (" .. R[name].status .. ") as " .. kind, function()
      local e = classify(name, service)
      assert.equal(R[name].status, e.status)
      assert.equal(code, e.code)
      assert.equal(kind, e.kind)
      assert.equal(retryable, e.retryable)
      assert.equal(backoff, e.backoff)
      assert.truthy(e.message:find(message), "message: " .. e.message)
      assert.falsy(e.message:find("\n"), "one line")
      assert.equal(R[name].headers["x-openstack-request-id"], e.request_id)
    end)
  end

  it("formats an error as 'service METHOD path: status reason: message'", function()
    local e = errors.from_response({ service = "compute", method = "POST", path = "/servers",
      url = "http://127.0.0.1/v2.1/servers" }, R.nova_quota_exceeded)
    assert.equal("compute POST /servers: 403 Forbidden: Quota exceeded for instances: "
      .. "Requested 1, but already used 1 of 1 instances", tostring(e))
    assert.is_true(errors.is_error(e))
  end)

  it("makes a transport failure status 0, transient and retryable", function()
    local e = errors.from_transport({ service = "network", method = "GET", path = "/networks",
      url = "http://127.0.0.1:9/v2.0/networks" },
      { code = 0, reason = "ConnectionRefused", message = "GET http://127.0.0.1:9/v2.0/networks: "
        .. "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server" })
    assert.same({ 0, "ConnectionRefused", "transient", true },
      { e.status, e.code, e.kind, e.retryable })
    assert.equal("network GET /networks: ConnectionRefused: GET http://127.0.0.1:9/v2.0/networks: "
      .. "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server", tostring(e))
    assert.is_true(errors.not_sent(e))
  end)

  it("does not call a reset connection unsent", function()
    local e = errors.from_transport({ service = "compute", method = "POST", path = "/servers" },
      { code = 0, reason = "ConnectionReset", message = "POST http://h/v2.1/servers: Recv failure: "
        .. "Connection reset by peer" })
    assert.is_false(errors.not_sent(e))
  end)

  it("takes a quota's backoff from Retry-After when that is longer", function()
    local r = { status = 413, headers = { ["retry-after"] = "120" }, body = R.cinder_over_quota.body }
    local e = errors.from_response({ service = "volumev3" }, r, 0)
    assert.same({ "quota", 120, 120 }, { e.kind, e.backoff, e.retry_after })
  end)

  it("treats a 413 with Retry-After and no quota words as a rate limit", function()
    local r = { status = 413, headers = { ["retry-after"] = "7" },
      body = '{"overLimit": {"code": 413, "message": "This request was rate-limited."}}' }
    local e = errors.from_response({ service = "compute" }, r, 0)
    assert.same({ "transient", true, 7 }, { e.kind, e.retryable, e.backoff })
  end)

  it("makes 429 transient with the Retry-After as backoff", function()
    local e = errors.from_response({ service = "identity" },
      { status = 429, headers = { ["retry-after"] = "3" }, body = "" }, 0)
    assert.same({ "transient", true, 3, "Too Many Requests" },
      { e.kind, e.retryable, e.backoff, e.message })
  end)

  it("makes 500, 502, 503, 504 transient and 501 terminal", function()
    for _, s in ipairs { 500, 502, 503, 504 } do
      local e = errors.from_response({}, { status = s, headers = {}, body = "" }, 0)
      assert.same({ "transient", true }, { e.kind, e.retryable })
    end
    local e = errors.from_response({}, { status = 501, headers = {}, body = "" }, 0)
    assert.same({ "terminal", false }, { e.kind, e.retryable })
  end)

  it("makes Cinder's 'status must be available' a retryable conflict", function()
    local r = { status = 400, headers = {}, body = '{"badRequest": {"code": 400, "message": '
      .. '"Invalid volume: Volume status must be available or error or error_restoring or '
      .. 'error_extending or error_managing and must not be migrating, attached, belong to a '
      .. 'group, have snapshots, awaiting a transfer, or be disassociated from snapshots '
      .. 'after volume transfer."}}' }
    local e = errors.from_response({ service = "volumev3" }, r, 0)
    assert.same({ "conflict", true }, { e.kind, e.retryable })
  end)

  it("reads Retry-After as seconds or as an HTTP date", function()
    assert.equal(30, errors.retry_after("30", 0))
    local now = errors.unix_time(2026, 11, 24, 15, 0, 0)
    assert.equal(90, errors.retry_after("Tue, 24 Nov 2026 15:01:30 GMT", now))
    assert.equal(0, errors.retry_after("Tue, 24 Nov 2026 14:00:00 GMT", now))
    assert.is_nil(errors.retry_after("soon", now))
  end)

  it("converts a UTC calendar time to Unix seconds", function()
    assert.equal(0, errors.unix_time(1970, 1, 1, 0, 0, 0))
    assert.equal(951782400, errors.unix_time(2000, 2, 29, 0, 0, 0))
    assert.equal(1795620868, errors.unix_time(2026, 11, 25, 15, 34, 28))
  end)

  it("keeps one line of at most 400 bytes", function()
    local s = errors.one_line(string.rep("word ", 200))
    assert.equal(400, #s)
    assert.equal("...", s:sub(-3))
    assert.equal("a b", errors.one_line("  a\n\t b  "))
  end)
end)
