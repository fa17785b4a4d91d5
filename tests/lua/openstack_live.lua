-- tests/lua/openstack_live.lua: ks.openstack against the real services of
-- tests/env/openstack, run in the host's sandbox:
--
--   eval "$(tests/env/openstack up)"    # or: source the file it printed
--   bin/kupenstack exec --set-file clouds_yaml="$OS_CLIENT_CONFIG_FILE" \
--     --set cloud="$OS_CLOUD" tests/lua/openstack_live.lua
--
-- The clouds.yaml comes from the host (ks.core.config: clouds_yaml and cloud, an admin
-- cloud such as kupenstack-admin; its kupenstack-demo cloud is used
-- too). Prints TAP lines and "N passed, N failed"; exits 0 only when all passed.
-- Everything it creates is named ks-live-<random> and deleted at the end.
local config = require "ks.core.config"
local time = require "ks.core.time"
local http = require "ks.core.http"
local openstack = require "ks.openstack"

local CLOUDS = config.get("clouds_yaml")
local CLOUD = config.get("cloud")
local passed, failed = 0, 0
local cleanup = {}   -- functions, run last to first
local tag = "ks-live-" .. string.format("%06x", math.random(0, 0xffffff))
  .. string.format("%x", math.floor(time.now()) % 0x10000)


local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name .. " # " .. tostring(err):gsub("\n", " "))
  end
end


-- Raise unless cond; the message says what was seen.
local function expect(cond, ...)
  if not cond then
    local parts = {}
    for i = 1, select("#", ...) do
      parts[#parts + 1] = tostring((select(i, ...)))
    end
    error(table.concat(parts, " "), 2)
  end
  return cond
end


local function must(v, err)
  if v == nil then
    error(tostring(err), 2)
  end
  return v
end


local function connect(opts)
  local o = { clouds_yaml = CLOUDS, cloud = CLOUD }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  return must(openstack.connect(o))
end


-- A handle with a session of its own (sessions are shared per transport function and
-- credentials), so that its counters see every token request.
local function fresh(opts)
  local o = { transport = function(req) return http.request(req) end }
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  return connect(o)
end


local admin = connect()
local demo_id


local function network(cloud, name)
  local body = must(cloud:request("network", "POST", "/networks",
    { body = { network = { name = name } }, expect = { 201 } }))
  local id = body.network.id
  cleanup[#cleanup + 1] = function()
    cloud:request("network", "DELETE", "/networks/" .. id)
  end
  return body.network
end


check("auth: a token scoped to the admin project, with a catalog", function()
  local e = must(admin:auth())
  expect(type(e.token) == "string" and #e.token > 20, "token", e.token)
  expect(e.project_name == "admin", "project", e.project_name)
  expect(#e.catalog >= 6, "catalog entries", #e.catalog)
end)

check("catalog: each service's base URL", function()
  local compute = must(admin:endpoint("compute"))
  local net = must(admin:endpoint("network"))
  local image = must(admin:endpoint("image"))
  local volume = must(admin:endpoint("volumev3"))
  local identity = must(admin:endpoint("identity"))
  expect(compute:match("/v2%.1$"), "compute", compute)
  expect(net:match("/v2%.0$"), "network", net)
  expect(image:match("/v2$"), "image", image)
  expect(volume:match("/v3/" .. admin:project_id() .. "$"), "volume", volume)
  expect(identity:match("/v3$"), "identity", identity)
  local _, err = admin:endpoint("dns")
  expect(err and err.kind == "invalid" and err.message:find("no endpoint for dns"), "dns", err)
end)

check("token reuse: five requests, one token; another connect reuses it too", function()
  local c = fresh()
  for _ = 1, 5 do
    must(c:request("compute", "GET", "/flavors"))
  end
  expect(c.stats.auth == 1 and c.stats.by_service.identity == 1 and c.stats.requests == 6,
    "auth", c.stats.auth, "identity", c.stats.by_service.identity, "requests", c.stats.requests)
  local again = connect()     -- the same session as `admin`, which has a token already
  must(again:request("compute", "GET", "/flavors"))
  expect(again.stats.auth == 0 and again.stats.requests == 1, "second handle", again.stats.auth)
end)

check("list flavors and networks", function()
  local flavors = must(admin:list("compute", "/flavors", "flavors"))
  local found
  for _, f in ipairs(flavors) do
    found = found or f.name == "m1.tiny"
  end
  expect(found, "m1.tiny not among", #flavors, "flavors")
  local nets = must(admin:list("network", "/networks", "networks", { query = { name = "public" } }))
  expect(#nets == 1 and nets[1]["router:external"] == true, "public networks", #nets)
end)

local function grant(project_id)
  local me = must(admin:auth()).user_id
  local role = must(admin:request("identity", "GET", "/roles", { query = { name = "member" } })).roles[1]
  local path = "/projects/" .. project_id .. "/users/" .. me .. "/roles/" .. role.id
  local _, err = admin:request("identity", "HEAD", path)
  if openstack.is_not_found(err) then
    must(admin:request("identity", "PUT", path))
    cleanup[#cleanup + 1] = function() admin:request("identity", "DELETE", path) end
  end
end


check("scoped: refused while admin has no role on demo, then a token for it", function()
  local projects = must(admin:request("identity", "GET", "/projects", { query = { name = "demo" } }))
  demo_id = must(projects.projects[1], "no project demo").id
  local me = must(admin:auth()).user_id
  local roles = must(admin:request("identity", "GET", "/role_assignments",
    { query = { ["user.id"] = me, ["scope.project.id"] = demo_id } })).role_assignments
  if #roles == 0 then
    local _, err = must(admin:scoped(demo_id)):auth()
    expect(err and err.kind == "unauthorized" and err.hint:find("has a role on project " .. demo_id,
      1, true), "without a role", err)
  end
  grant(demo_id)   -- for this run only (revoked at the end)
  local before = admin.stats.requests
  local demo = must(admin:scoped(demo_id))
  expect(demo:project_id() == demo_id, "scoped to", demo:project_id())
  expect(admin:project_id() ~= demo_id, "the admin handle kept its scope")
  local net = network(demo, tag .. "-scoped")
  expect(net.project_id == demo_id, "network's project", net.project_id)
  expect(admin.stats.requests >= before + 2, "shared stats", admin.stats.requests, before)
end)

check("the demo cloud of the same clouds.yaml", function()
  local demo = connect { cloud = "kupenstack-demo" }
  expect(demo:project_id() == demo_id, "demo cloud project", demo:project_id(), demo_id)
  local _, err = demo:request("compute", "GET", "/os-hypervisors")
  expect(err and err.kind == "forbidden" and err.status == 403, "hypervisors as demo", err)
end)

check("404: the fields of a real not-found", function()
  local id = "00000000-0000-4000-8000-" .. string.format("%012x", math.random(0, 2 ^ 31))
  local body, err = admin:request("compute", "GET", "/servers/" .. id)
  expect(body == nil and openstack.is_not_found(err), "not found", err)
  expect(err.status == 404 and err.service == "compute" and err.method == "GET", "fields", err)
  expect(err.path == "/servers/" .. id and err.code == "itemNotFound", "path/code", err.path, err.code)
  expect(err.retryable == false and err.request_id and err.request_id:match("^req%-"),
    "retryable/request_id", err.retryable, err.request_id)
  expect(tostring(err) == "compute GET /servers/" .. id .. ": 404 Not Found: Instance " .. id
    .. " could not be found.", "tostring", err)
end)

check("409: Neutron's NetworkInUse classified, retried when allowed", function()
  local demo = must(admin:scoped(demo_id))
  local net = network(demo, tag .. "-inuse")
  local port = must(demo:request("network", "POST", "/ports",
    { body = { port = { network_id = net.id, name = tag } } })).port
  local _, err = demo:request("network", "DELETE", "/networks/" .. net.id, { retries = 0 })
  expect(err and err.status == 409 and err.code == "NetworkInUse", "409", err)
  expect(err.kind == "conflict" and err.retryable == true, "kind", err.kind, err.retryable)
  local retries = demo.stats.retries
  _, err = demo:request("network", "DELETE", "/networks/" .. net.id, { retries = 1 })
  expect(err and err.attempts == 2 and demo.stats.retries == retries + 1, "retried once",
    err and err.attempts)
  must(demo:request("network", "DELETE", "/ports/" .. port.id, { expect = { 204 } }))
end)

check("create and delete a network", function()
  local net = network(admin, tag .. "-crud")
  local got = must(admin:request("network", "GET", "/networks/" .. net.id))
  expect(got.network.name == tag .. "-crud", "name", got.network.name)
  local body, res = admin:request("network", "DELETE", "/networks/" .. net.id)
  expect(body and res.status == 204, "delete", res)
  local _, err = admin:request("network", "GET", "/networks/" .. net.id)
  expect(openstack.is_not_found(err) and err.code == "NetworkNotFound", "gone", err)
end)

check("pagination: limit=1 over Neutron, Nova and Glance", function()
  local demo = must(admin:scoped(demo_id))
  local want = {}
  for i = 1, 3 do
    want[network(demo, tag .. "-page" .. i).id] = true
  end
  local before = demo.stats.by_service.network or 0
  local nets = must(demo:list("network", "/networks", "networks",
    { limit = 1, query = { project_id = demo_id } }))
  local pages = demo.stats.by_service.network - before
  local seen = 0
  for _, n in ipairs(nets) do
    seen = seen + (want[n.id] and 1 or 0)
  end
  expect(seen == 3 and pages == #nets + 1, "networks", seen, "of 3 in", #nets, "over", pages, "pages")

  for i = 1, 2 do
    local f = must(admin:request("compute", "POST", "/flavors", { body = { flavor = {
      name = tag .. "-f" .. i, ram = 64, vcpus = 1, disk = 0 } } })).flavor
    cleanup[#cleanup + 1] = function() admin:request("compute", "DELETE", "/flavors/" .. f.id) end
  end
  before = admin.stats.by_service.compute
  local flavors = must(admin:list("compute", "/flavors", "flavors", { limit = 1 }))
  expect(#flavors >= 3 and admin.stats.by_service.compute - before == #flavors + 1,
    "flavors", #flavors, admin.stats.by_service.compute - before)

  for i = 1, 2 do
    local img = must(admin:request("image", "POST", "/images", { body = {
      name = tag .. "-i" .. i, disk_format = "raw", container_format = "bare" } }))
    cleanup[#cleanup + 1] = function() admin:request("image", "DELETE", "/images/" .. img.id) end
  end
  before = admin.stats.by_service.image
  local images = must(admin:list("image", "/images", "images", { limit = 1 }))
  local mine = 0
  for _, i in ipairs(images) do
    mine = mine + (i.name:find(tag, 1, true) and 1 or 0)
  end
  expect(mine == 2 and admin.stats.by_service.image - before >= #images, "images", mine,
    #images, admin.stats.by_service.image - before)
end)

check("microversions: Nova's range, and a request at 2.79", function()
  local mv = must(admin:microversion("compute", "2.79"))
  expect(mv == "2.79", "2.79 supported", mv)
  local _, err = admin:microversion("compute", "9.0")
  expect(err and err.kind == "invalid", "9.0 refused", err)
  local body, res = admin:request("compute", "GET", "/servers/detail", { microversion = "2.79" })
  expect(body and res.headers["openstack-api-version"] == "compute 2.79", "answered at", res)
end)

check("quota: Neutron OverQuota and Cinder overLimit in a project with low quotas", function()
  local p = must(admin:request("identity", "POST", "/projects", { body = { project = {
    name = tag .. "-quota", domain_id = "default" } } })).project
  cleanup[#cleanup + 1] = function() admin:request("identity", "DELETE", "/projects/" .. p.id) end
  grant(p.id)
  must(admin:request("network", "PUT", "/quotas/" .. p.id, { body = { quota = { network = 1 } } }))
  must(admin:request("volumev3", "PUT", "/os-quota-sets/" .. p.id,
    { body = { quota_set = { volumes = 0 } } }))
  local scoped = must(admin:scoped(p.id))
  network(scoped, tag .. "-q1")
  local _, err = scoped:request("network", "POST", "/networks", { body = { network = { name = tag .. "-q2" } } })
  expect(err and err.status == 409 and err.code == "OverQuota", "neutron", err)
  expect(err.kind == "quota" and err.retryable and err.backoff == 60, "neutron kind", err.kind, err.backoff)
  _, err = scoped:request("volumev3", "POST", "/volumes", { body = { volume = { size = 1 } } })
  expect(err and err.status == 413 and err.kind == "quota" and err.backoff == 60, "cinder", err)
end)

check("401: a revoked token is replaced once and the request goes through", function()
  local c = fresh()
  local e = must(c:auth())
  must(c:request("identity", "DELETE", "/auth/tokens",
    { headers = { ["X-Subject-Token"] = e.token }, expect = { 204 } }))
  -- Keystone itself: Nova and Neutron cache token validations for minutes.
  local body = must(c:request("identity", "GET", "/auth/projects"))
  expect(type(body.projects) == "table", "projects")
  expect(c.stats.reauth == 1 and c.stats.auth == 2, "reauth", c.stats.reauth, "auth", c.stats.auth)
  expect(must(c:auth()).token ~= e.token, "a new token")
end)

check("wrong password: a clear unauthorized error", function()
  local text = CLOUDS:gsub("password: [^\n]+", "password: wrong-" .. tag)
  local c = must(openstack.connect { clouds_yaml = text, cloud = CLOUD })
  local body, err = c:request("compute", "GET", "/flavors")
  expect(body == nil and err.status == 401 and err.kind == "unauthorized", "401", err)
  expect(err.service == "identity" and err.retryable == false, "identity", err.service)
  expect(tostring(err):find("check the username, password, project and domains", 1, true), tostring(err))
  expect(c.stats.auth == 1, "asked Keystone once", c.stats.auth)
end)

check("connection refused: status 0, transient, retried", function()
  local text = CLOUDS:gsub("(\n  " .. CLOUD:gsub("%p", "%%%0") .. ":\n)",
    "%1    compute_endpoint_override: http://127.0.0.1:9/v2.1\n")
  local c = must(openstack.connect { clouds_yaml = text, cloud = CLOUD, retries = 1 })
  local _, err = c:request("compute", "GET", "/flavors")
  expect(err and err.status == 0 and err.kind == "transient" and err.retryable, "refused", err)
  expect(err.code == "ConnectionRefused" and err.attempts == 2, "code/attempts", err.code, err.attempts)
end)

for i = #cleanup, 1, -1 do
  pcall(cleanup[i])
end
print(passed .. " passed, " .. failed .. " failed")
return failed == 0 and 0 or 1
