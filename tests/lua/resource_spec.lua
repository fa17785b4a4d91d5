-- Unit tests of ks.resource, the framework every OpenStack kind stands on, through its front
-- door: names and tags, the plugin table it makes, and the reconcile and finalize flows on
-- a scripted kind (def) with the cloud stubbed out. Each part has its own spec too
-- (resource_<part>_spec.lua: adopt, converge, finalize, result, compare, refs). The offline fixtures of the kinds
-- (tests/plugins/*) run the same flows in the real sandbox against canned HTTP answers.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
local shim = require "shim.core"
local json = require "ks.core.json"

local rs = require "shim.resource"
local resource = require "ks.resource"
local clouds = require "ks.resource.cloud"
local errors = require "ks.openstack.errors"

local objects, obj, by_type, ctx_of = rs.objects, rs.obj, rs.by_type, rs.ctx_of


-- A kind on a scripted cloud (shim.resource) that updates its size, made a plugin.
local function kind_of(extra)
  local calls
  local d, store
  d, store, calls = rs.scripted({
    update = function(_, cur, o)
      local want = resource.diff((o.spec and o.spec.resource) or {}, cur, { "size" })
      if not want then
        return cur, false
      end
      calls[#calls + 1] = "update size"
      cur.size = want.size
      return cur, true
    end,
  })
  for k, v in pairs(extra or {}) do
    d[k] = v
  end
  return resource.plugin(d), store, calls, d
end


describe("ks.resource", function()
  local cloud_for = clouds.cloud_for
  before_each(function()
    rs.clear()
    clouds.cloud_for = function() return { name = "cloud" } end
  end)
  after_each(function()
    clouds.cloud_for = cloud_for
  end)

  describe("names and tags", function()
    it("uid_tag marks the resource made for an object by its UID", function()
      assert.equal("kupenstack-uid-u1", resource.uid_tag(obj()))
    end)

    it("name: spec.resource.name, else metadata.name", function()
      assert.equal("os", resource.name(obj({ resource = { name = "os" } })))
      assert.equal("n1", resource.name(obj({ resource = {} })))
      assert.equal("n1", resource.name({ metadata = { name = "n1" } }))
    end)

    it("res: a kind of kupenstack.io/v1alpha1", function()
      assert.same({ group = "kupenstack.io", version = "v1alpha1", kind = "Volume" },
        resource.res("Volume"))
    end)
  end)

  describe("plugin", function()
    it("refuses a kind without a required function, naming it", function()
      local ok, err = pcall(resource.plugin, { kind = "X", get = 1, find_own = 1, create = 1,
                                               delete = 1 })
      assert.is_false(ok)
      assert.matches("'observe' is required", err)
    end)

    it("the plugin table: finalizer, watches of Namespaces and the kinds it depends on", function()
      local p = kind_of({ depends = { "Image", "Flavor" } })
      assert.equal("kupenstack.io/openstack", p.finalizer)
      assert.equal("Widget", p.kind)
      assert.is_nil(p.scope)
      assert.same({ "Namespace", "Image", "Flavor" },
        { p.watches[1].kind, p.watches[2].kind, p.watches[3].kind })
      assert.equal("Cluster", p.watches[3].scope)
      objects.Widget = { { metadata = { name = "a", namespace = "ns" } },
                         { metadata = { name = "b", namespace = "ns2" } } }
      -- A change of a Namespace re-reconciles that namespace's objects only.
      assert.same({ "ns/a" }, p.watches[1].map({ metadata = { name = "ns" } }))
      -- A change of a cluster-scoped dependency re-reconciles every object of the kind.
      assert.same({ "ns/a", "ns2/b" }, p.watches[3].map({ metadata = { name = "small" } }))
    end)
  end)

  describe("reconcile", function()
    it("creates, with an Event, and builds the status from observe", function()
      local p, store, calls = kind_of()
      local ctx = ctx_of()
      local r = p.reconcile(obj({ resource = { size = 1 } }), ctx)
      assert.same({ "find_own", "create" }, calls)
      assert.same({ id = "w1", projectID = "p1", resource = { name = "n1", size = 1 } }, r.status)
      assert.equal("True", by_type(r.conditions, "Available").status)
      assert.equal("widget w1 is ready", by_type(r.conditions, "Available").message)
      assert.same({ { type = "Normal", reason = "Created", message = "created Widget w1" } }, ctx.events)
      assert.is_not_nil(store.w1)
    end)

    it("updates only what differs, with an Event; nothing when nothing does", function()
      local p, store, calls = kind_of()
      store.w1 = { id = "w1", name = "n1", size = 1, project_id = "p1" }
      local ctx = ctx_of()
      local r = p.reconcile(obj({ resource = { size = 2 } }, { status = { id = "w1" } }), ctx)
      assert.same({ "get w1", "update size" }, calls)
      assert.equal(2, r.status.resource.size)
      assert.same({ "Updated" }, { ctx.events[1].reason })
      ctx = ctx_of()
      p.reconcile(obj({ resource = { size = 2 } }, { status = { id = "w1" } }), ctx)
      assert.same({}, ctx.events)
    end)

    it("an immutable field changed: terminal, with the message, the status kept", function()
      local p, store, calls = kind_of({ immutable = function(o, cur)
        if o.spec.resource.name and o.spec.resource.name ~= cur.name then
          return "spec.resource.name is immutable"
        end
      end })
      store.w1 = { id = "w1", name = "n1", size = 1 }
      local r = p.reconcile(obj({ resource = { name = "other", size = 5 } }, { status = { id = "w1" } }),
        ctx_of())
      assert.same({ "get w1" }, calls) -- no update
      assert.is_true(r.terminal)
      assert.equal("spec.resource.name is immutable", r.error)
      assert.equal("w1", r.status.id)
      assert.equal(1, r.status.resource.size)
    end)

    it("found by its tag after a lost create answer: adopted, not created again", function()
      local p, store, calls = kind_of()
      store.w9 = { id = "w9", name = "n1", tag = "kupenstack-uid-u1" }
      local ctx = ctx_of()
      local r = p.reconcile(obj({ resource = {} }), ctx)
      assert.same({ "find_own" }, calls)
      assert.equal("w9", r.status.id)
      assert.equal("Adopted", ctx.events[1].reason)
    end)

    -- A POST that timed out may still be made by the service (a loaded Nova made two and
    -- three servers for one Instance this way): look for it before creating again.
    it("a create without an answer: only looked for (by its tag) for a while, then adopted", function()
      local timeout = errors.from_transport({ service = "widget", method = "POST", path = "/w" },
        { reason = "Timeout", message = "Operation timed out after 60000 milliseconds" })
      local p, store, calls = kind_of({ create = function() return nil, timeout end })
      local o = obj({ resource = {} }, { metadata = { name = "n1", namespace = "ns",
        uid = "u-timeout", generation = 1 } })
      local r = p.reconcile(o, ctx_of())
      assert.equal("Transient", r.reason)
      assert.truthy(r.error:find("timed out", 1, true))
      for _ = 1, 3 do
        shim.advance(30)
        calls[#calls] = nil
        r = p.reconcile(o, ctx_of())
        assert.equal("find_own", calls[#calls])
        assert.equal("Waiting", by_type(r.conditions, "Progressing").reason)
        assert.truthy(by_type(r.conditions, "Progressing").message:find("got no answer", 1, true))
      end
      store.w7 = { id = "w7", name = "n1", tag = "kupenstack-uid-u-timeout" }
      local ctx = ctx_of()
      r = p.reconcile(o, ctx)
      assert.equal("w7", r.status.id)
      assert.equal("Adopted", ctx.events[1].reason)
    end)

    it("a create without an answer is tried again once the grace is over", function()
      local n = 0
      local timeout = errors.from_transport({ service = "widget", method = "POST", path = "/w" },
        { reason = "Timeout", message = "Operation timed out" })
      local p = kind_of({ create = function() n = n + 1 return nil, timeout end })
      local o = obj({ resource = {} }, { metadata = { name = "n1", namespace = "ns",
        uid = "u-grace", generation = 1 } })
      p.reconcile(o, ctx_of())
      shim.advance(60)
      p.reconcile(o, ctx_of())
      assert.equal(1, n)
      shim.advance(resource.UNANSWERED_GRACE)
      p.reconcile(o, ctx_of())
      assert.equal(2, n)
    end)

    it("a create that was never sent (connection refused) is tried again at once", function()
      local n = 0
      local refused = errors.from_transport({ service = "widget", method = "POST", path = "/w" },
        { reason = "ConnectionRefused", message = "Failed to connect: Connection refused" })
      local p = kind_of({ create = function() n = n + 1 return nil, refused end })
      local o = obj({ resource = {} }, { metadata = { name = "n1", namespace = "ns",
        uid = "u-refused", generation = 1 } })
      p.reconcile(o, ctx_of())
      p.reconcile(o, ctx_of())
      assert.equal(2, n)
    end)

    it("deleted outside: a Warning, and created again", function()
      local p, _, calls = kind_of()
      local ctx = ctx_of()
      local r = p.reconcile(obj({ resource = {} }, { status = { id = "w0" } }), ctx)
      assert.same({ "get w0", "find_own", "create" }, calls)
      assert.equal("w1", r.status.id)
      assert.same({ "Warning", "Drift" }, { ctx.events[1].type, ctx.events[1].reason })
    end)

    it("an import whose filter matches several: terminal, naming them", function()
      local p, store = kind_of()
      store.a1 = { id = "a1", name = "shared" }
      store.a2 = { id = "a2", name = "shared" }
      local r = p.reconcile(obj({ import = { filter = { name = "shared" } } }), ctx_of())
      assert.is_true(r.terminal)
      assert.equal("spec.import.filter matches 2 Widgets (a1, a2); it must match exactly one", r.error)
    end)

    it("an import that matches nothing waits, saying so", function()
      local p = kind_of()
      local r = p.reconcile(obj({ import = { filter = { name = "none" } } }), ctx_of())
      assert.equal(30, r.requeue_after)
      assert.equal("no Widget matches spec.import.filter",
        by_type(r.conditions, "Progressing").message)
    end)

    it("an import that matches nothing looks again after the import_retry setting", function()
      local p = kind_of()
      assert.equal(30, p.config_schema.import_retry.default)
      local ctx = ctx_of()
      ctx.config = { import_retry = 3 }
      local r = p.reconcile(obj({ import = { filter = { name = "none" } } }), ctx)
      assert.equal(3, r.requeue_after)
    end)

    it("unmanaged without an import is refused", function()
      local p = kind_of()
      local r = p.reconcile(obj({ managementPolicy = "unmanaged" }), ctx_of())
      assert.is_true(r.terminal)
      assert.matches("set spec.import", r.error)
    end)

    it("a state of error or progressing becomes the conditions", function()
      local state = "error"
      local p, store = kind_of({ observe = function() return {}, state, "it is " .. state end })
      store.w1 = { id = "w1", name = "n1" }
      local o = obj({ resource = {} }, { status = { id = "w1" } })
      local r = p.reconcile(o, ctx_of())
      assert.same({ "False", "ResourceError" }, { by_type(r.conditions, "Available").status,
        by_type(r.conditions, "Available").reason })
      assert.equal(60, r.requeue_after)
      state = "progressing"
      r = p.reconcile(o, ctx_of())
      assert.equal("True", by_type(r.conditions, "Progressing").status)
      assert.equal(3, r.requeue_after) -- def.poll, 3 by default
    end)

    it("a namespace without a project waits", function()
      clouds.cloud_for = function() return nil, nil, "namespace ns has no OpenStack project yet" end
      local r = kind_of().reconcile(obj(), ctx_of())
      assert.equal("namespace ns has no OpenStack project yet",
        by_type(r.conditions, "Progressing").message)
    end)
  end)

  describe("finalize", function()
    local deleting = { deletionTimestamp = "now" }

    it("deletes the resource, with an Event", function()
      local p, store, calls = kind_of()
      store.w1 = { id = "w1" }
      local ctx = ctx_of()
      local o = obj({}, { status = { id = "w1" } })
      o.metadata.deletionTimestamp = deleting.deletionTimestamp
      assert.same({}, p.finalize(o, ctx))
      assert.same({ "get w1", "delete w1" }, calls)
      assert.equal("Deleted", ctx.events[1].reason)
    end)

    it("gone already: nothing to do", function()
      local p, _, calls = kind_of()
      assert.same({}, p.finalize(obj({}, { status = { id = "w1" } }), ctx_of()))
      assert.same({ "get w1" }, calls)
    end)

    it("onDelete: detach leaves it, without asking the cloud", function()
      local p, _, calls = kind_of()
      local ctx = ctx_of()
      assert.same({}, p.finalize(obj({ onDelete = "detach" }, { status = { id = "w1" } }), ctx))
      assert.same({}, calls)
      assert.equal("left Widget w1 in OpenStack (onDelete: detach)", ctx.events[1].message)
    end)

    it("in use (a conflict): waits, naming the user", function()
      local p, store = kind_of({ delete = function()
        return nil, { kind = "conflict", message = "Instance vm1 boots from it" }
      end })
      store.w1 = { id = "w1" }
      local r = p.finalize(obj({}, { status = { id = "w1" } }), ctx_of())
      assert.equal(5, r.requeue_after)
      assert.equal("cannot delete Widget w1 yet, it is still in use: Instance vm1 boots from it",
        by_type(r.conditions, "Progressing").message)
    end)

    it("an asynchronous delete waits until the resource is gone", function()
      local p, store = kind_of({ async_delete = true })
      store.w1 = { id = "w1" }
      local r = p.finalize(obj({}, { status = { id = "w1" } }), ctx_of())
      assert.equal(2, r.requeue_after)
      assert.equal("Deleting", by_type(r.conditions, "Progressing").reason)
    end)

    it("no id yet: finds its own by the tag (a create whose answer was lost)", function()
      local p, store, calls = kind_of()
      store.w7 = { id = "w7", tag = "kupenstack-uid-u1" }
      p.finalize(obj({}), ctx_of())
      assert.same({ "find_own", "delete w7" }, calls)
    end)
  end)

  describe("declarative immutable, users and hooks", function()
    local function server(extra)
      local cur = { id = "w1", name = "n1", tag = "kupenstack-uid-u1", project_id = "p1",
                    size = 1, zone = "az1", flavor = { original_name = "small" } }
      for k, v in pairs(extra or {}) do
        cur[k] = v
      end
      return cur
    end

    local ZONE = { "spec.resource.zone", have = "zone", is = "the widget is in" }

    it("a field of the spec changed: the message names it, what it is and what spec says", function()
      local p, store = kind_of({ immutable = { ZONE } })
      store.w1 = server()
      local r = p.reconcile(obj({ resource = { zone = "az2" } }, { status = { id = "w1" } }), ctx_of())
      assert.is_true(r.terminal)
      assert.equal("spec.resource.zone is immutable: the widget is in az1, spec says az2; "
        .. "delete and recreate the Widget to change it", r.error)
    end)

    it("unchanged, unset in spec or unset in OpenStack: no message", function()
      local check = require("ks.resource.immutable").checker("Widget", { ZONE })
      assert.is_nil(check(obj({ resource = { zone = "az1" } }), server(), {}))
      assert.is_nil(check(obj({ resource = {} }), server(), {}))
      assert.is_nil(check(obj({ resource = { zone = "az2" } }), server({ zone = json.null }), {}))
    end)

    it("a reference (dep), a read function, a note and unset_differs", function()
      local check = require("ks.resource.immutable").checker("Widget", {
        { "spec.flavorRef", dep = "flavor", note = "resizing is not supported",
          have = function(cur) return cur.flavor.original_name end, is = "the widget has flavor" },
        { "spec.keyRef", dep = "key", have = "key", unset_differs = true },
      })
      assert.equal("spec.flavorRef is immutable (resizing is not supported): the widget has "
        .. "flavor small; delete and recreate the Widget to change it",
        check(obj({}), server(), { flavor = "big" }))
      assert.equal("spec.keyRef is immutable: the widget has none; delete and recreate the "
        .. "Widget to change it", check(obj({}), server(), { key = "k1" }))
      assert.is_nil(check(obj({}), server(), { flavor = "small" }))
    end)

    it("a function among the entries, and the function form, are kept", function()
      local odd = function(o) return o.spec.odd and "odd" end
      local check = require("ks.resource.immutable").checker("Widget", { odd })
      assert.equal("odd", check(obj({ odd = true }), server(), {}))
      assert.equal(odd, require("ks.resource.immutable").checker("Widget", odd))
    end)

    it("a malformed entry is refused when the plugin is built, naming it", function()
      local ok, err = pcall(kind_of, { immutable = { { have = "zone" } } })
      assert.is_false(ok)
      assert.matches("immutable%[1%] needs the field's path first", err)
    end)

    it("users: the deletion waits while one refers to it, naming it; then deletes", function()
      local p, store, calls = kind_of({ users = {
        { kind = "Gadget", ref = "spec.widgetRef", says = "runs on it" },
        { kind = "Gizmo", ref = "spec.widgetRef" },
      } })
      store.w1 = server()
      local function user(kind, name, ref)
        return { kind = kind, metadata = { name = name, namespace = "ns", uid = name },
                 spec = { widgetRef = { name = ref } } }
      end
      objects.Gadget = { user("Gadget", "g1", "n1"), user("Gadget", "g2", "other") }
      objects.Gizmo = { user("Gizmo", "z1", "n1"), user("Gizmo", "z2", "n1") }
      local o = obj({}, { status = { id = "w1" } })
      o.metadata.deletionTimestamp = "now"
      local r = p.finalize(o, ctx_of())
      assert.equal("cannot delete Widget w1 yet, it is still in use: Gadget g1 runs on it; "
        .. "Gizmo z1, Gizmo z2 of this namespace refer to it: delete them first",
        by_type(r.conditions, "Progressing").message)
      assert.same({ "get w1" }, calls)
      objects.Gadget, objects.Gizmo = {}, {}
      assert.same({}, p.finalize(o, ctx_of()))
      assert.same({ "get w1", "get w1", "delete w1" }, calls)
    end)

    it("users: a watch per user kind not already a dependency, mapping to what it names", function()
      local p = kind_of({ depends = { "Gizmo" }, users = {
        { kind = "Gadget", ref = "spec.widgetRef" }, { kind = "Gizmo", ref = "spec.widgetRef" } } })
      assert.same({ "Namespace", "Gizmo", "Gadget" },
        { p.watches[1].kind, p.watches[2].kind, p.watches[3].kind })
      assert.is_nil(p.watches[4])
      assert.same({ "ns/w9" }, p.watches[3].map({ metadata = { name = "g", namespace = "ns" },
                                                  spec = { widgetRef = { name = "w9" } } }))
      assert.same({}, p.watches[3].map({ metadata = { name = "g", namespace = "ns" }, spec = {} }))
    end)

    it("configure gets the settings, status adds to the status, finish has the last word", function()
      local seen
      local p, store = kind_of({
        configure = function(config) seen = config end,
        status = function(st) st.extra = st.resource.name .. "!" end,
        finish = function(res) res.requeue_after = 42 return res end,
      })
      store.w1 = server()
      local ctx = ctx_of()
      ctx.config = { every = 7 }
      local r = p.reconcile(obj({}, { status = { id = "w1" } }), ctx)
      assert.same({ every = 7 }, seen)
      assert.equal("n1!", r.status.extra)
      assert.equal(42, r.requeue_after)
    end)
  end)
end)
