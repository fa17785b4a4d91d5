-- Unit tests of ks.set.plan: the InstanceSet's checks, template hash and plan. Pure
-- functions: no host, no cluster.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local plan = require "ks.set.plan"


local function spec(extra)
  local s = {
    replicas = 3,
    selector = { matchLabels = { app = "web" } },
    template = { metadata = { labels = { app = "web", tier = "front" } },
                 spec = { flavorRef = { name = "f" } } },
  }
  for k, v in pairs(extra or {}) do
    s[k] = v
  end
  return s
end


-- members(n, fields): n members m1..mn, created in order, of hash "h" and Available.
local function members(list)
  local out = {}
  for i, m in ipairs(list) do
    out[i] = { name = m.name or ("m" .. i), uid = "u" .. i, hash = m.hash or "h",
               created = m.created or string.format("2030-01-01T00:00:%02dZ", i),
               available = m.available ~= false, failed = m.failed, deleting = m.deleting }
  end
  return out
end


local function names(list)
  local out = {}
  for i, m in ipairs(list) do
    out[i] = m.name
  end
  return out
end


local DEFAULT = { max_surge = 1, max_unavailable = 0 }


describe("ks.set.plan.check", function()
  it("accepts a selector the template's labels match", function()
    assert.is_nil(plan.check(spec()))
  end)

  it("refuses an empty selector, naming spec.selector", function()
    assert.matches("spec.selector must have", plan.check(spec({ selector = {} })))
  end)

  it("refuses template labels the selector does not match, naming the field and label", function()
    local msg = plan.check(spec({ selector = { matchLabels = { app = "db" } } }))
    assert.matches("spec.template.metadata.labels must match spec.selector", msg, 1, true)
    assert.matches("app=db", msg, 1, true)
    assert.matches("the template has app=web", msg, 1, true)
  end)

  it("refuses a template matchExpressions does not match", function()
    local msg = plan.check(spec({ selector = { matchExpressions = {
      { key = "tier", operator = "In", values = { "back" } } } } }))
    assert.matches("matchExpressions does not match", msg, 1, true)
  end)

  it("refuses maxSurge and maxUnavailable both 0, and a malformed percentage", function()
    assert.matches("cannot both be 0", plan.check(spec({ strategy = { rollingUpdate = {
      maxSurge = 0, maxUnavailable = 0 } } })))
    assert.matches("spec.strategy.rollingUpdate.maxSurge must be", plan.check(spec({
      strategy = { rollingUpdate = { maxSurge = "ten" } } })), 1, true)
  end)
end)


describe("ks.set.plan.strategy", function()
  it("defaults to maxSurge 1, maxUnavailable 0", function()
    assert.same({ max_surge = 1, max_unavailable = 0, paused = false }, plan.strategy(spec()))
  end)

  it("rounds a surge percentage up and an unavailable one down", function()
    local s = plan.strategy(spec({ replicas = 10, strategy = { rollingUpdate = {
      maxSurge = "25%", maxUnavailable = "25%" } } }))
    assert.same({ 3, 2 }, { s.max_surge, s.max_unavailable })
  end)
end)


describe("ks.set.plan.hash", function()
  it("does not depend on key order and is a 12-character label value", function()
    local a = plan.hash({ metadata = { labels = { a = "1", b = "2" } }, spec = { x = 1 } })
    local b = plan.hash({ spec = { x = 1 }, metadata = { labels = { b = "2", a = "1" } } })
    assert.equals(a, b)
    assert.matches("^[0-9a-z]+$", a)
    assert.equals(12, #a)
  end)

  it("changes with the template and with the placement", function()
    local t = { spec = { imageRef = { name = "a" } } }
    local h = plan.hash(t, "none")
    assert.not_equals(h, plan.hash({ spec = { imageRef = { name = "b" } } }, "none"))
    assert.not_equals(h, plan.hash(t, "anti-affinity"))
  end)

  it("is the same in another process for a template holding a null", function()
    -- The host's null is a light userdata whose address differs from one process to the
    -- next: another process is played by another null of the same kind.
    local json = require "ks.core.json"
    local saved = json.null
    local function with_null() return { metadata = { annotations = json.null }, spec = { x = 1 } } end
    local h = plan.hash(with_null(), "none")
    json.null = newproxy()
    local again = plan.hash(with_null(), "none")
    json.null = saved
    assert.equals(h, again)
  end)
end)


describe("ks.set.plan.selector_string", function()
  it("writes matchLabels sorted, then the expressions", function()
    assert.equals("a=1,b=2,t in (x,y),u notin (z),v,!w", plan.selector_string({
      matchLabels = { b = "2", a = "1" }, matchExpressions = {
        { key = "t", operator = "In", values = { "x", "y" } },
        { key = "u", operator = "NotIn", values = { "z" } },
        { key = "v", operator = "Exists" }, { key = "w", operator = "DoesNotExist" } } }))
  end)
end)


describe("ks.set.plan.plan", function()
  it("creates what is missing", function()
    local p = plan.plan(3, {}, "h", DEFAULT)
    assert.same({ 3, 0 }, { p.create, #p.delete })
  end)

  it("scales down the not Available first, then the newest", function()
    local p = plan.plan(2, members({ {}, { available = false }, {}, {}, {} }), "h", DEFAULT)
    assert.same({ "m2", "m5", "m4" }, names(p.delete))
    assert.equals(0, p.create)
  end)

  it("does not count members being deleted, and replaces them", function()
    local p = plan.plan(3, members({ {}, {}, { deleting = true } }), "h", DEFAULT)
    assert.same({ 1, 0 }, { p.create, #p.delete })
  end)

  it("deletes a member that gave up recovering and makes another", function()
    local p = plan.plan(3, members({ {}, { available = false, failed = true }, {} }), "h", DEFAULT)
    assert.same({ "m2" }, names(p.delete))
    assert.equals(1, p.create)
  end)

  it("rolls with maxSurge 1, maxUnavailable 0: one new first, no old goes yet", function()
    local p = plan.plan(3, members({ { hash = "o" }, { hash = "o" }, { hash = "o" } }), "h", DEFAULT)
    assert.same({ 1, 0, true }, { p.create, #p.delete, p.rolling })
  end)

  it("... an old one goes once the new one is Available, not before", function()
    local ms = members({ { hash = "o" }, { hash = "o" }, { hash = "o" }, { available = false } })
    assert.same({ 0, 0 }, { plan.plan(3, ms, "h", DEFAULT).create, #plan.plan(3, ms, "h", DEFAULT).delete })
    ms[4].available = true
    local p = plan.plan(3, ms, "h", DEFAULT)
    assert.same({ "m3" }, names(p.delete))
    assert.equals(0, p.create)
  end)

  it("rolls with maxUnavailable 2, maxSurge 0: two old go at once, none made first", function()
    local ms = members({ { hash = "o" }, { hash = "o" }, { hash = "o" } })
    local p = plan.plan(3, ms, "h", { max_surge = 0, max_unavailable = 2 })
    assert.equals(2, #p.delete)
    assert.equals(0, p.create)
  end)

  it("deletes an old member that is not Available at once", function()
    local ms = members({ { hash = "o" }, { hash = "o", available = false }, { hash = "o" } })
    local p = plan.plan(3, ms, "h", DEFAULT)
    assert.same({ "m2" }, names(p.delete))
    assert.equals(1, p.create)
  end)

  it("does not roll while paused, but scales", function()
    local ms = members({ { hash = "o" }, { hash = "o" } })
    local p = plan.plan(3, ms, "h", { max_surge = 1, max_unavailable = 0, paused = true })
    assert.same({ 1, 0, false }, { p.create, #p.delete, p.rolling })
  end)
end)
