-- Unit tests of ks.resource.neutron on a scripted cloud: what each operation asks Neutron for (the
-- UID tag after a create, only the changed fields in an update, the project's untagged
-- resource found again after a lost tagging, deletes without retries) and the pure helpers.
-- The end-to-end counterpart, against the real Neutron, is tests/e2e/neutron.sh.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local json = require "ks.core.json"

local objects = {} -- kube.list's answers, by kind
package.preload["ks.core.kube"] = function()
  return {
    list = function(res) return objects[res.kind] or {} end,
    get = function(res, _, name)
      for _, o in ipairs(objects[res.kind] or {}) do
        if o.metadata.name == name then
          return o
        end
      end
    end,
  }
end
package.preload["ks.core.config"] = function() return { get = function() return nil end } end

local neutron = require "ks.resource.neutron"
local resource = require "ks.resource"


-- A cloud answering from routes {method, path pattern, function(path, opts) -> body, err},
-- recording each call as {method, path, opts}.
local function cloud_of(routes)
  local c = { calls = {} }
  function c.request(self, _, method, path, opts)
    opts = opts or {}
    self.calls[#self.calls + 1] = { method = method, path = path, opts = opts }
    for _, r in ipairs(routes) do
      if r[1] == method and path:match(r[2]) then
        return r[3](path, opts)
      end
    end
    error("unexpected " .. method .. " " .. path)
  end
  function c.list(self, service, path, key, opts)
    local body, err = self:request(service, "GET", path, opts)
    if not body then
      return nil, err
    end
    return body[key]
  end
  function c.project_id()
    return "p1"
  end
  return c
end


local function answer(body)
  return function() return body, { status = 200 } end
end


local function obj(spec, name)
  return { metadata = { name = name or "n1", namespace = "ns", uid = "u1" }, spec = spec or {} }
end

local UID = "kupenstack-uid-u1"


local function network_kind(extra)
  local d = {
    kind = "Network", path = "/networks", key = "network", plural = "networks",
    mutable = { "name", "description", "mtu" },
    desired = function(o)
      local body = resource.pick((o.spec and o.spec.resource) or {}, { "description", "mtu" })
      body.name = neutron.name(o)
      return body
    end,
    observe = function(cur) return cur, "available" end,
  }
  for k, v in pairs(extra or {}) do
    d[k] = v
  end
  return neutron.kind(d)
end


describe("ks.resource.neutron", function()
  before_each(function()
    for k in pairs(objects) do
      objects[k] = nil
    end
  end)

  describe("helpers", function()
    it("same_set compares strings in any order", function()
      assert.is_true(neutron.same_set({ "a", "b" }, { "b", "a" }))
      assert.is_false(neutron.same_set({ "a", "b" }, { "a" }))
      assert.is_false(neutron.same_set({ "a", "b" }, { "a", "c" }))
    end)

    it("same_items compares tables in any order", function()
      local a = { { start = "1", ["end"] = "2" }, { start = "5", ["end"] = "6" } }
      local b = { { start = "5", ["end"] = "6" }, { start = "1", ["end"] = "2" } }
      assert.is_true(neutron.same_items(a, b))
      assert.is_false(neutron.same_items(a, { b[1], b[1] }))
      assert.is_false(neutron.same_items(a, json.null))
    end)

    it("name: spec.resource.name, else metadata.name, and none for an import naming none", function()
      assert.equal("os", neutron.name(obj({ resource = { name = "os" } })))
      assert.equal("n1", neutron.name(obj({})))
      assert.is_nil(neutron.name(obj({ import = { id = "x" } })))
      assert.equal("os", neutron.name(obj({ import = { id = "x" }, resource = { name = "os" } })))
    end)

    it("available_id: the ID once the object is Available, else what to wait for", function()
      local function sg(name, id, status)
        return { metadata = { name = name }, status = { id = id, conditions = status and {
          { type = "Available", status = status } } } }
      end
      objects.SecurityGroup = { sg("ready", "sg1", "True"), sg("made", "sg2", "False"), sg("new") }
      assert.equal("sg1", neutron.available_id(obj(), "SecurityGroup", "ready"))
      assert.same({ nil, "SecurityGroup made is not available yet" },
        { neutron.available_id(obj(), "SecurityGroup", "made") })
      assert.same({ nil, "SecurityGroup new is not created yet" },
        { neutron.available_id(obj(), "SecurityGroup", "new") })
      assert.same({ nil, "SecurityGroup gone does not exist" },
        { neutron.available_id(obj(), "SecurityGroup", "gone") })
    end)

    it("still_used names the objects referring to it, not those being deleted nor itself", function()
      local function sub(name, ref, deleting)
        return { metadata = { name = name, uid = name, deletionTimestamp = deleting },
                 spec = { networkRef = { name = ref } } }
      end
      objects.Subnet = { sub("s1", "n1"), sub("s2", "other"), sub("s3", "n1", "now") }
      local checks = { { kind = "Subnet", refs = function(o) return { o.spec.networkRef.name } end } }
      local err = neutron.still_used(obj(), checks)
      assert.same({ kind = "conflict", message = "Subnet s1 of this namespace refers to it: "
        .. "delete it first" }, err)
      objects.Subnet = { sub("s3", "n1", "now") }
      assert.is_nil(neutron.still_used(obj(), checks))
    end)
  end)

  describe("create", function()
    it("POSTs the desired body marked with the UID, tags it, sets the spec's description", function()
      local c = cloud_of {
        { "POST", "^/networks$", answer({ network = { id = "id1", tags = {} } }) },
        { "PUT", "^/networks/id1/tags$", answer({ tags = { UID } }) },
        { "PUT", "^/networks/id1$", answer({ network = { id = "id1" } }) },
        { "GET", "^/networks/id1$", answer({ network = { id = "id1", tags = { UID } } }) },
      }
      local o = obj({ resource = { description = "d" } })
      local cur = network_kind().create(c, o, {})
      assert.same({ id = "id1", tags = { UID } }, cur)
      assert.same({ network = { name = "n1", description = neutron.own_description(o) } },
        c.calls[1].opts.body)
      assert.same({ tags = { UID } }, c.calls[2].opts.body)
      assert.same({ network = { description = "d" } }, c.calls[3].opts.body)
      assert.equal(4, #c.calls)
    end)

    it("fails with the tagging's error (the create is found again by its description later)", function()
      local err = { kind = "transient" }
      local c = cloud_of {
        { "POST", "^/networks$", answer({ network = { id = "id1" } }) },
        { "PUT", "/tags$", function() return nil, err end },
      }
      local cur, got = network_kind().create(c, obj(), {})
      assert.is_nil(cur)
      assert.equal(err, got)
    end)
  end)

  describe("find_own", function()
    it("finds the resource by the UID tag", function()
      local c = cloud_of { { "GET", "^/networks$", answer({ networks = { { id = "id1" } } }) } }
      assert.same({ id = "id1" }, network_kind().find_own(c, obj()))
      assert.same({ tags = UID }, c.calls[1].opts.query)
    end)

    it("adopts the project's untagged resource marked with its UID, never one merely of its name", function()
      local mark
      local c = cloud_of {
        { "GET", "^/networks$", function(_, opts)
          if opts.query.tags then
            return { networks = {} }
          end
          return { networks = { { id = "theirs", description = mark, tags = { "kupenstack-uid-u2" } },
                                { id = "same-name", name = "n1", description = "", tags = {} },
                                { id = "lost", description = mark, tags = { "user" } } } }
        end },
        { "PUT", "^/networks/lost/tags$", answer({}) },
        { "GET", "^/networks/lost$", answer({ network = { id = "lost" } }) },
      }
      local o = obj()
      mark = neutron.own_description(o)
      assert.same({ id = "lost" }, network_kind().find_own(c, o))
      assert.same({ description = mark, project_id = "p1" }, c.calls[2].opts.query)
      assert.same({ tags = { "user", UID } }, c.calls[3].opts.body)
    end)

    it("a resource of its name without the mark is not ours: nothing is adopted", function()
      local c = cloud_of {
        { "GET", "^/networks$", function(_, opts)
          if opts.query.tags or opts.query.description then
            return { networks = {} }
          end
          return { networks = { { id = "byhand", name = "n1", tags = {} } } }
        end },
      }
      assert.is_nil(network_kind().find_own(c, obj()))
      assert.equal(2, #c.calls)
    end)
  end)

  describe("update", function()
    local cur = { id = "id1", name = "n1", description = "old", mtu = 1500, tags = { UID } }

    it("PUTs only the mutable fields that differ, and reads the result", function()
      local c = cloud_of {
        { "PUT", "^/networks/id1$", answer({ network = {} }) },
        { "GET", "^/networks/id1$", answer({ network = { id = "id1", description = "new" } }) },
      }
      local now, changed = network_kind().update(c, cur, obj({ resource = { description = "new",
        mtu = 1500 } }), {})
      assert.is_true(changed)
      assert.same({ id = "id1", description = "new" }, now)
      assert.same({ network = { description = "new" } }, c.calls[1].opts.body)
    end)

    it("asks nothing when all is as wanted, comparing with d.equal where given", function()
      local c = cloud_of {}
      local k = network_kind({ equal = { mtu = function(w, h) return w == h - 100 end } })
      local now, changed = k.update(c, cur, obj({ resource = { description = "old", mtu = 1400 } }), {})
      assert.is_false(changed)
      assert.equal(cur, now)
      assert.equal(0, #c.calls)
    end)

    it("sets spec.resource.tags, keeping the UID tag", function()
      local c = cloud_of {
        { "PUT", "^/networks/id1/tags$", answer({}) },
        { "GET", "^/networks/id1$", answer({ network = { id = "id1" } }) },
      }
      local _, changed = network_kind().update(c, cur, obj({ resource = { tags = { "a" } } }), {})
      assert.is_true(changed)
      assert.same({ tags = { "a", UID } }, c.calls[1].opts.body)
    end)

    it("runs after_update and counts what it changed", function()
      local c = cloud_of { { "GET", "^/networks/id1$", answer({ network = { id = "id1" } }) } }
      local k = network_kind({ after_update = function() return true end })
      local _, changed = k.update(c, cur, obj({}), {})
      assert.is_true(changed)
    end)
  end)

  describe("delete", function()
    it("DELETEs without retries (a resource in use is waited for by ks.resource)", function()
      local c = cloud_of { { "DELETE", "^/networks/id1$", answer({}) } }
      assert.truthy(network_kind().delete(c, { id = "id1" }, obj()))
      assert.same({ expect = { 204 }, retries = 0 }, c.calls[1].opts)
    end)

    it("does not take a 404 for gone while the resource is still there (a racing subnet delete)", function()
      local nf = require("ks.openstack.errors").new { status = 404, kind = "not_found",
        message = "The resource could not be found." }
      local c = cloud_of {
        { "DELETE", "^/networks/id1$", function() return nil, nf end },
        { "GET", "^/networks/id1$", answer({ network = { id = "id1" } }) },
      }
      local ok, err = network_kind().delete(c, { id = "id1" }, obj())
      assert.is_nil(ok)
      assert.same({ "transient", 2 }, { err.kind, err.backoff })
      c = cloud_of {
        { "DELETE", "^/networks/id1$", function() return nil, nf end },
        { "GET", "^/networks/id1$", function() return nil, nf end },
      }
      ok, err = network_kind().delete(c, { id = "id1" }, obj())
      assert.is_nil(ok)
      assert.equal(nf, err)
    end)

    it("stops at before_delete's error", function()
      local c = cloud_of {}
      local err = { kind = "conflict", message = "in use" }
      local k = network_kind({ before_delete = function() return nil, err end })
      local ok, got = k.delete(c, { id = "id1" }, obj())
      assert.is_nil(ok)
      assert.equal(err, got)
      assert.equal(0, #c.calls)
    end)
  end)
end)
