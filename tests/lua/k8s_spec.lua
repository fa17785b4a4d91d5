-- Unit tests of ks.k8s: conditions, finalizers, owner references, labels, desired objects
-- and deep copy/equal/merge of JSON values. Pure functions: no host, no cluster.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local k8s = require "ks.k8s"

local json = shim.json
local null = json.null


local function widget(extra)
  local o = {
    apiVersion = "test.kupenstack.io/v1", kind = "Widget",
    metadata = { name = "w1", namespace = "ns1", uid = "uid-w1", generation = 3 },
    spec = { size = 1 },
  }
  return k8s.merge(o, extra or {})
end


local function is_array_marked(t)
  local mt = getmetatable(t)
  return mt ~= nil and mt.__jsontype == "array"
end


describe("ks.k8s values", function()
  it("copy returns an equal table that shares nothing with the original", function()
    local a = { x = { y = { 1, 2 } }, s = "s" }
    local b = k8s.copy(a)
    b.x.y[1] = 9
    assert.same({ x = { y = { 1, 2 } }, s = "s" }, a)
  end)

  it("copy keeps json.null and array marks", function()
    local a = { n = null, list = json.array({}) }
    local b = k8s.copy(a)
    assert.equal(null, b.n)
    assert.is_true(is_array_marked(b.list))
  end)

  it("copy returns scalars as they are", function()
    assert.same({ 1, "x", true }, { k8s.copy(1), k8s.copy("x"), k8s.copy(true) })
  end)

  it("equal compares nested tables by value", function()
    assert.is_true(k8s.equal({ a = { b = { 1, 2 } } }, { a = { b = { 1, 2 } } }))
  end)

  it("equal sees a key missing on either side", function()
    assert.same({ false, false },
      { k8s.equal({ a = 1 }, { a = 1, b = 2 }), k8s.equal({ a = 1, b = 2 }, { a = 1 }) })
  end)

  it("equal tells json.null from an empty table and from nil", function()
    assert.same({ true, false, false },
      { k8s.equal(null, null), k8s.equal(null, {}), k8s.equal({ a = null }, {}) })
  end)

  it("equal takes an empty array for an empty object", function()
    assert.is_true(k8s.equal(json.array({}), {}))
  end)

  it("equal compares arrays in order", function()
    assert.is_false(k8s.equal({ 1, 2 }, { 2, 1 }))
  end)

  it("merge merges objects key by key, at any depth", function()
    assert.same({ a = 1, b = { c = 2, d = 3 } },
      k8s.merge({ a = 1, b = { c = 2 } }, { b = { d = 3 } }))
  end)

  it("merge deletes a key patched with json.null", function()
    assert.same({ a = 1, b = { d = 3 } },
      k8s.merge({ a = 1, b = { c = 2, d = 3 }, e = 5 }, { b = { c = null }, e = null }))
  end)

  it("merge leaves no null behind for a key the target lacked", function()
    assert.same({ a = 1, b = {} }, k8s.merge({ a = 1 }, { x = null, b = { y = null } }))
  end)

  it("merge replaces arrays whole", function()
    assert.same({ l = { 3 } }, k8s.merge({ l = { 1, 2 } }, { l = { 3 } }))
  end)

  it("merge replaces a scalar with an object and an object with a scalar", function()
    assert.same({ a = { b = 1 }, c = "x" }, k8s.merge({ a = 5, c = { d = 1 } }, { a = { b = 1 }, c = "x" }))
  end)

  it("merge with a non-object patch returns the patch (RFC 7386)", function()
    assert.same({ { 1 }, "s" }, { k8s.merge({ a = 1 }, { 1 }), k8s.merge({ a = 1 }, "s") })
  end)

  it("merge changes neither argument", function()
    local t, p = { a = { b = 1 } }, { a = { b = null, c = 2 } }
    k8s.merge(t, p)
    assert.same({ { a = { b = 1 } }, { a = { b = null, c = 2 } } }, { t, p })
  end)

  it("is_array and is_object tell arrays, objects and null apart", function()
    assert.same({ true, true, false, false, true, false },
      { k8s.is_array({ 1 }), k8s.is_array(json.array({})), k8s.is_array({}),
        k8s.is_array(null), k8s.is_object({}), k8s.is_object(null) })
  end)
end)


describe("ks.k8s conditions", function()
  local T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
  local ready = { type = "Ready", status = "True", reason = "Done", message = "ok",
                  lastTransitionTime = T0 }

  it("get_condition finds a condition of an object by type", function()
    local o = widget({ status = { conditions = { ready } } })
    assert.same(ready, k8s.get_condition(o, "Ready"))
  end)

  it("get_condition takes a list of conditions too", function()
    assert.same(ready, k8s.get_condition({ ready }, "Ready"))
  end)

  it("get_condition gives nil without status or without that type", function()
    assert.same({ nil, nil }, { k8s.get_condition(widget(), "Ready"),
      k8s.get_condition({ ready }, "Available") })
  end)

  it("is_true needs status True", function()
    local f = k8s.merge(ready, { status = "False" })
    assert.same({ true, false, false },
      { k8s.is_true({ ready }, "Ready"), k8s.is_true({ f }, "Ready"), k8s.is_true({}, "Ready") })
  end)

  it("set_condition appends a new condition stamped now", function()
    assert.same({ { type = "Ready", status = "True", reason = "Done", message = "ok",
                    lastTransitionTime = T1 } },
      k8s.set_condition({}, { type = "Ready", status = "True", reason = "Done", message = "ok" },
        { now = T1 }))
  end)

  it("set_condition keeps lastTransitionTime while the status stays the same", function()
    local out = k8s.set_condition({ ready }, { type = "Ready", status = "True", reason = "Again",
      message = "still ok" }, { now = T1 })
    assert.same({ { type = "Ready", status = "True", reason = "Again", message = "still ok",
                    lastTransitionTime = T0 } }, out)
  end)

  it("set_condition stamps now when the status changes", function()
    local out = k8s.set_condition({ ready }, { type = "Ready", status = "False", reason = "Broken" },
      { now = T1 })
    assert.same({ { type = "Ready", status = "False", reason = "Broken", lastTransitionTime = T1 } }, out)
  end)

  it("set_condition defaults status to Unknown and reason to the status", function()
    assert.same({ { type = "Ready", status = "Unknown", reason = "Unknown", lastTransitionTime = T1 } },
      k8s.set_condition({}, { type = "Ready" }, { now = T1 }))
  end)

  it("set_condition leaves an empty message out", function()
    assert.same({ { type = "Ready", status = "True", reason = "True", lastTransitionTime = T1 } },
      k8s.set_condition({}, { type = "Ready", status = "True", message = "" }, { now = T1 }))
  end)

  it("set_condition replaces in place and keeps the other conditions", function()
    local avail = { type = "Available", status = "True", reason = "R", lastTransitionTime = T0 }
    local out = k8s.set_condition({ ready, avail }, { type = "Ready", status = "False", reason = "X" },
      { now = T1 })
    assert.same({ { type = "Ready", status = "False", reason = "X", lastTransitionTime = T1 }, avail }, out)
  end)

  it("set_condition on an object reads its conditions and its generation", function()
    local o = widget({ status = { conditions = { ready } } })
    assert.same({ { type = "Ready", status = "True", reason = "Done", lastTransitionTime = T0,
                    observedGeneration = 3 } },
      k8s.set_condition(o, { type = "Ready", status = "True", reason = "Done" }, { now = T1 }))
  end)

  it("set_condition sets observedGeneration only when it is > 0", function()
    local a = k8s.set_condition({}, { type = "A", status = "True" }, { now = T1, generation = 0 })
    local b = k8s.set_condition({}, { type = "A", status = "True" }, { now = T1, generation = 7 })
    assert.same({ nil, 7 }, { a[1].observedGeneration, b[1].observedGeneration })
  end)

  it("set_condition does not change the list it was given", function()
    local conds = { ready }
    k8s.set_condition(conds, { type = "Ready", status = "False" }, { now = T1 })
    assert.same({ { type = "Ready", status = "True", reason = "Done", message = "ok",
                    lastTransitionTime = T0 } }, conds)
  end)

  it("set_condition returns a list marked as a JSON array", function()
    assert.is_true(is_array_marked(k8s.set_condition({}, { type = "A" }, { now = T1 })))
  end)

  it("set_condition defaults now to the current UTC time", function()
    local c = k8s.set_condition({}, { type = "A" })[1]
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", c.lastTransitionTime)
  end)

  it("set_condition raises without a type", function()
    assert.has_error(function() k8s.set_condition({}, { status = "True" }) end,
      "set_condition: want.type must be a string")
  end)
end)


describe("ks.k8s finalizers", function()
  local F = "kupenstack.io/test"

  it("has_finalizer sees a finalizer and its absence", function()
    local o = widget({ metadata = { finalizers = { "a", F } } })
    assert.same({ true, false, false },
      { k8s.has_finalizer(o, F), k8s.has_finalizer(o, "b"), k8s.has_finalizer(widget(), F) })
  end)

  it("add_finalizer appends to a copy", function()
    local o = widget({ metadata = { finalizers = { "a" } } })
    local out = k8s.add_finalizer(o, F)
    assert.same({ { "a", F }, { "a" } }, { out.metadata.finalizers, o.metadata.finalizers })
  end)

  it("add_finalizer creates the list", function()
    assert.same({ F }, k8s.add_finalizer(widget(), F).metadata.finalizers)
  end)

  it("add_finalizer does not add one twice", function()
    local o = widget({ metadata = { finalizers = { F } } })
    assert.same({ F }, k8s.add_finalizer(o, F).metadata.finalizers)
  end)

  it("add_finalizer returns a copy whose spec is its own", function()
    local o = widget()
    k8s.add_finalizer(o, F).spec.size = 99
    assert.same({ size = 1 }, o.spec)
  end)

  it("remove_finalizer removes from a copy, keeping the others in order", function()
    local o = widget({ metadata = { finalizers = { "a", F, "b" } } })
    local out = k8s.remove_finalizer(o, F)
    assert.same({ { "a", "b" }, { "a", F, "b" } }, { out.metadata.finalizers, o.metadata.finalizers })
  end)

  it("remove_finalizer leaves an empty array behind the last one", function()
    local out = k8s.remove_finalizer(widget({ metadata = { finalizers = { F } } }), F)
    assert.same({ {}, true }, { out.metadata.finalizers, is_array_marked(out.metadata.finalizers) })
  end)

  it("remove_finalizer of an absent one changes nothing", function()
    assert.same(widget(), k8s.remove_finalizer(widget(), F))
  end)
end)


describe("ks.k8s owner references", function()
  it("owner_ref names the owner", function()
    assert.same({ apiVersion = "test.kupenstack.io/v1", kind = "Widget", name = "w1", uid = "uid-w1" },
      k8s.owner_ref(widget()))
  end)

  it("owner_ref marks the controller and blocks owner deletion when asked", function()
    assert.same({ apiVersion = "test.kupenstack.io/v1", kind = "Widget", name = "w1", uid = "uid-w1",
                  controller = true, blockOwnerDeletion = true },
      k8s.owner_ref(widget(), { controller = true, block = true }))
  end)

  it("owner_ref raises for an object without a uid", function()
    assert.has_error(function() k8s.owner_ref({ apiVersion = "v1", kind = "X", metadata = { name = "x" } }) end,
      "owner_ref: the owner needs apiVersion, kind, metadata.name and metadata.uid")
  end)

  it("is_owned_by matches by uid", function()
    local child = { metadata = { ownerReferences = { k8s.owner_ref(widget()) } } }
    local other = widget({ metadata = { uid = "uid-other" } })
    assert.same({ true, false }, { k8s.is_owned_by(child, widget()), k8s.is_owned_by(child, other) })
  end)

  it("is_owned_by with controller = true needs the controller flag", function()
    local plain = { metadata = { ownerReferences = { k8s.owner_ref(widget()) } } }
    local ctl = { metadata = { ownerReferences = { k8s.owner_ref(widget(), { controller = true }) } } }
    assert.same({ false, true }, { k8s.is_owned_by(plain, widget(), { controller = true }),
      k8s.is_owned_by(ctl, widget(), { controller = true }) })
  end)

  it("is_owned_by is false for an object without owners", function()
    assert.is_false(k8s.is_owned_by({ metadata = {} }, widget()))
  end)

  it("controller_of picks the controller among the owners", function()
    local ctl = k8s.owner_ref(widget(), { controller = true })
    local o = { metadata = { ownerReferences = { { uid = "x", kind = "A" }, ctl } } }
    assert.same(ctl, k8s.controller_of(o))
  end)
end)


describe("ks.k8s labels", function()
  local o = widget({ metadata = { labels = { app = "db", tier = "back" } } })

  it("matches needs every label of the selector", function()
    assert.same({ true, true, false, false },
      { k8s.matches(o, { app = "db" }), k8s.matches(o, { app = "db", tier = "back" }),
        k8s.matches(o, { app = "web" }), k8s.matches(o, { app = "db", zone = "a" }) })
  end)

  it("matches with no labels matches everything, even an unlabelled object", function()
    assert.same({ true, true }, { k8s.matches(o, {}), k8s.matches(widget(), nil) })
  end)

  it("matches fails for an unlabelled object and a non-empty selector", function()
    assert.is_false(k8s.matches(widget(), { app = "db" }))
  end)

  it("matches_selector applies matchLabels and every operator", function()
    local sel = { matchLabels = { app = "db" }, matchExpressions = {
      { key = "tier", operator = "In", values = { "back", "mid" } },
      { key = "zone", operator = "NotIn", values = { "a" } },
      { key = "app", operator = "Exists" },
      { key = "canary", operator = "DoesNotExist" },
    } }
    assert.is_true(k8s.matches_selector(o, sel))
  end)

  it("matches_selector fails when one expression fails", function()
    assert.same({ false, false, false },
      { k8s.matches_selector(o, { matchExpressions = { { key = "tier", operator = "In", values = { "x" } } } }),
        k8s.matches_selector(o, { matchExpressions = { { key = "tier", operator = "DoesNotExist" } } }),
        k8s.matches_selector(o, { matchLabels = { app = "web" } }) })
  end)

  it("matches_selector raises on an unknown operator", function()
    assert.has_error(function()
      k8s.matches_selector(o, { matchExpressions = { { key = "a", operator = "Gt" } } })
    end, "matches_selector: unknown operator Gt")
  end)
end)


describe("ks.k8s desired objects", function()
  it("desired defaults the namespace and adds the parent as controller", function()
    local cm = k8s.desired(widget(), { apiVersion = "v1", kind = "ConfigMap",
      metadata = { name = "w1-conf" }, data = { a = "1" } })
    assert.same({ apiVersion = "v1", kind = "ConfigMap", data = { a = "1" },
      metadata = { name = "w1-conf", namespace = "ns1", ownerReferences = {
        { apiVersion = "test.kupenstack.io/v1", kind = "Widget", name = "w1", uid = "uid-w1",
          controller = true, blockOwnerDeletion = true } } } }, cm)
  end)

  it("desired defaults the name to the parent's", function()
    local cm = k8s.desired(widget(), { apiVersion = "v1", kind = "ConfigMap" }, { owner = false })
    assert.same({ name = "w1", namespace = "ns1" }, cm.metadata)
  end)

  it("desired keeps other owners and replaces an old reference to the parent", function()
    local other = { apiVersion = "v1", kind = "X", name = "x", uid = "uid-x" }
    local cm = k8s.desired(widget(), { apiVersion = "v1", kind = "ConfigMap", metadata = {
      ownerReferences = { other, k8s.owner_ref(widget()) } } })
    assert.same({ other, k8s.owner_ref(widget(), { controller = true, block = true }) },
      cm.metadata.ownerReferences)
  end)

  it("desired leaves out the namespace of a cluster-scoped child", function()
    local parent = widget({ metadata = { namespace = null } })
    local ns = k8s.desired(parent, { apiVersion = "v1", kind = "Namespace", metadata = { name = "t" } },
      { cluster = true })
    assert.same({ name = "t", ownerReferences = {
      k8s.owner_ref(parent, { controller = true, block = true }) } }, ns.metadata)
  end)

  it("desired refuses an owner reference across namespaces", function()
    assert.has_error(function()
      k8s.desired(widget(), { apiVersion = "v1", kind = "ConfigMap", metadata = { namespace = "other" } })
    end, "desired: Widget ns1/w1 cannot own an object outside its namespace")
  end)

  it("desired raises without apiVersion or kind", function()
    assert.has_error(function() k8s.desired(widget(), { kind = "ConfigMap" }) end,
      "desired: desc needs apiVersion and kind")
  end)

  it("desired does not change desc", function()
    local desc = { apiVersion = "v1", kind = "ConfigMap", metadata = { labels = { a = "b" } } }
    k8s.desired(widget(), desc)
    assert.same({ apiVersion = "v1", kind = "ConfigMap", metadata = { labels = { a = "b" } } }, desc)
  end)

  it("for_apply names the object itself and adds the fields", function()
    assert.same({ apiVersion = "test.kupenstack.io/v1", kind = "Widget",
                  metadata = { name = "w1", namespace = "ns1", labels = { x = "y" } } },
      k8s.for_apply(widget(), { metadata = { labels = { x = "y" } } }))
  end)

  it("for_apply with no fields gives just the object's identity", function()
    assert.same({ apiVersion = "test.kupenstack.io/v1", kind = "Widget",
                  metadata = { name = "w1", namespace = "ns1" } }, k8s.for_apply(widget()))
  end)
end)
