-- Unit tests of ks.resource.refs: the kinds of the group, ref_id, the resolver of an
-- object's references, and the watches that map a dependency's or a namespace's change to
-- the objects to look at again.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local rs = require "shim.resource"
local refs = require "ks.resource.refs"

local objects = rs.objects


describe("ks.resource.refs", function()
  before_each(function()
    rs.clear()
  end)

  it("res: a kind of kupenstack.io/v1alpha1", function()
    assert.same({ group = "kupenstack.io", version = "v1alpha1", kind = "Volume" }, refs.res("Volume"))
  end)

  it("scope: Cluster for a cluster-scoped kind (Flavor), nil for the others", function()
    assert.equal("Cluster", refs.scope("Flavor"))
    assert.is_nil(refs.scope("Volume"))
  end)

  describe("ref_id", function()
    local function widget(name, id, deleting, ns)
      return { metadata = { name = name, namespace = ns or "ns", deletionTimestamp = deleting },
               status = id and { id = id } or nil }
    end

    it("the ID of a created object of the namespace, else what is awaited", function()
      objects.Widget = { widget("ready", "w1"), widget("new"), widget("going", "w2", "now"),
                         widget("other", "w3", nil, "ns2") }
      local id, _, o = refs.ref_id("ns", "Widget", "ready")
      assert.equal("w1", id)
      assert.equal("ready", o.metadata.name)
      assert.same({ nil, "Widget new is not created yet" }, { refs.ref_id("ns", "Widget", "new") })
      assert.same({ nil, "Widget going is being deleted" }, { refs.ref_id("ns", "Widget", "going") })
      -- Another namespace's object of that name is not seen.
      assert.same({ nil, "Widget other does not exist" }, { refs.ref_id("ns", "Widget", "other") })
      assert.same({ nil, "a Widget reference without a name" }, { refs.ref_id("ns", "Widget", nil) })
    end)

    it("a cluster-scoped kind (Flavor) is looked up without a namespace", function()
      objects.Flavor = { { metadata = { name = "small" }, status = { id = "f1" } } }
      assert.equal("f1", (refs.ref_id("ns", "Flavor", "small")))
    end)
  end)

  describe("resolver", function()
    local function widget(name, id, available)
      return { metadata = { name = name, namespace = "ns" },
               status = id and { id = id, conditions = {
                 { type = "Available", status = available and "True" or "False" } } } or nil }
    end
    local function resolve(obj, names)
      local ref, done = refs.resolver(obj)
      local deps = {}
      for _, n in ipairs(names) do
        deps[n] = ref("Widget", n)
      end
      return done(deps)
    end

    before_each(function()
      objects.Widget = { widget("ready", "w1", true), widget("made", "w2", false), widget("new"),
                         widget("late", "w3", false) }
    end)

    it("is_available: the Available condition's status, false without one", function()
      assert.is_true(refs.is_available(widget("a", "x", true)))
      assert.is_false(refs.is_available(widget("a", "x", false)))
      assert.is_false(refs.is_available(widget("a")))
    end)

    it("gives the ID and the object of an Available reference", function()
      local ref = refs.resolver(rs.obj())
      local id, o = ref("Widget", "ready")
      assert.equal("w1", id)
      assert.equal("ready", o.metadata.name)
      assert.same({ ready = "w1" }, resolve(rs.obj(), { "ready" }))
    end)

    it("before the resource exists: nil and the first reference awaited", function()
      assert.same({ nil, "Widget made is not Available yet" },
        { resolve(rs.obj(), { "ready", "made", "new" }) })
      assert.same({ nil, "Widget new is not created yet" },
        { resolve(rs.obj(), { "new", "made" }) })
    end)

    it("after: the deps, a not Available one kept, a missing one named in deps.missing", function()
      local created = rs.obj(nil, { status = { id = "i1" } })
      assert.same({ ready = "w1", made = "w2", late = "w3",
                    missing = "Widget new is not created yet" },
        resolve(created, { "ready", "made", "new", "late" }))
      assert.same({ ready = "w1", late = "w3" }, resolve(created, { "ready", "late" }))
    end)
  end)

  describe("watches", function()
    it("Namespaces first, then each kind depended on, a cluster-scoped one marked", function()
      local w = refs.watches("Widget", { "Image", "Flavor" })
      assert.same({ "Namespace", "Image", "Flavor" }, { w[1].kind, w[2].kind, w[3].kind })
      assert.same({ "", "kupenstack.io", "kupenstack.io" }, { w[1].group, w[2].group, w[3].group })
      assert.same({ nil, nil, "Cluster" }, { w[1].scope, w[2].scope, w[3].scope })
      assert.equal(1, #refs.watches("Widget"))
    end)

    it("a Namespace or a namespaced dependency maps to the objects of its namespace", function()
      objects.Widget = { { metadata = { name = "a", namespace = "ns" } },
                         { metadata = { name = "b", namespace = "ns2" } } }
      local w = refs.watches("Widget", { "Image" })
      assert.same({ "ns/a" }, w[1].map({ metadata = { name = "ns" } }))
      assert.same({ "ns2/b" }, w[2].map({ metadata = { name = "i", namespace = "ns2" } }))
    end)

    it("a cluster-scoped dependency, or kind, maps to every object of the kind", function()
      objects.Widget = { { metadata = { name = "a", namespace = "ns" } },
                         { metadata = { name = "b", namespace = "ns2" } } }
      assert.same({ "ns/a", "ns2/b" },
        refs.same_namespace("Widget", "Flavor")({ metadata = { name = "small" } }))
      objects.Flavor = { { metadata = { name = "small" } } }
      assert.same({ "small" }, refs.same_namespace("Flavor", "Namespace")({ metadata = { name = "ns" } }))
    end)
  end)
end)
