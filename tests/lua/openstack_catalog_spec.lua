-- Unit tests of ks.openstack.catalog: endpoint selection by type, interface and region,
-- and joining paths to each service's URL. The first catalog is the real one of
-- tests/env/openstack (captured); the multi-region one is made up here.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local catalog = require "ks.openstack.catalog"
local C = require "shim.cloud"


local function url(service, interface, region)
  return catalog.find(C.token.catalog, service, interface or "public", region)
end


describe("ks.openstack.catalog", function()
  describe("in the real catalog", function()
    it("finds each service's public endpoint", function()
      for _, t in ipairs { "identity", "compute", "image", "network", "placement", "volumev3" } do
        assert.equal(C.url[t], url(t, "public", "RegionOne"))
      end
    end)

    it("finds Cinder under block-storage, volume and volumev3", function()
      assert.equal(C.url.volumev3, url("block-storage"))
      assert.equal(C.url.volumev3, url("volume"))
    end)

    it("says what the catalog has when a service is missing", function()
      local u, err = url("object-store")
      assert.is_nil(u)
      assert.equal("no endpoint for object-store (public) in the catalog, which has: identity, "
        .. "image, compute, network, placement, volumev3", err)
    end)

    it("says where a service is when the region does not match", function()
      local _, err = url("compute", "public", "RegionTwo")
      assert.truthy(err:find("the catalog has it at public@RegionOne, internal@RegionOne, "
        .. "admin@RegionOne", 1, true))
    end)
  end)

  describe("in a catalog with two regions", function()
    local cat = { {
      type = "compute",
      endpoints = {
        { interface = "public", region_id = "east", url = "https://east/compute/v2.1" },
        { interface = "internal", region_id = "east", url = "http://east-int:8774/v2.1" },
        { interface = "public", region_id = "west", region = "west", url = "https://west/compute/v2.1" },
      },
    } }

    it("picks by interface and region", function()
      assert.equal("https://west/compute/v2.1", catalog.find(cat, "compute", "public", "west"))
      assert.equal("http://east-int:8774/v2.1", catalog.find(cat, "compute", "internal", "east"))
    end)

    it("takes the first of the interface when no region is set", function()
      assert.equal("https://east/compute/v2.1", catalog.find(cat, "compute", "public", nil))
    end)
  end)

  describe("base", function()
    it("keeps Nova's /v2.1", function()
      assert.same({ "http://h:8774/v2.1", "http://h:8774" },
        { catalog.base("compute", "http://h:8774/v2.1/") })
    end)

    it("keeps a legacy /v2.1/<project id>", function()
      assert.same({ "http://h/compute/v2.1/0123abcd", "http://h/compute" },
        { catalog.base("compute", "http://h/compute/v2.1/0123abcd") })
    end)

    it("adds /v2.0 to Neutron's and /v2 to Glance's", function()
      assert.same({ "http://h:9696/v2.0", "http://h:9696" }, { catalog.base("network", "http://h:9696") })
      assert.same({ "https://h/image/v2", "https://h/image" }, { catalog.base("image", "https://h/image/") })
    end)

    it("keeps Cinder's /v3/<project id> and adds one when missing", function()
      assert.same({ "http://h:8776/v3/p1", "http://h:8776" }, { catalog.base("volumev3", "http://h:8776/v3/p1") })
      assert.same({ "http://h:8776/v3/p1", "http://h:8776" }, { catalog.base("block-storage", "http://h:8776", "p1") })
    end)

    it("leaves Placement and unknown services alone", function()
      assert.same({ "http://h/placement", "http://h/placement" }, { catalog.base("placement", "http://h/placement") })
      assert.same({ "http://h/x", "http://h/x" }, { catalog.base("dns", "http://h/x") })
    end)
  end)

  describe("join", function()
    it("puts a path under the base", function()
      assert.equal("http://h:9696/v2.0/networks", catalog.join("http://h:9696/v2.0", "http://h:9696", "/networks"))
      assert.equal("http://h:9696/v2.0/networks", catalog.join("http://h:9696/v2.0", "http://h:9696", "networks"))
    end)

    it("puts a versioned path (Glance's next links) under the root", function()
      assert.equal("http://h/image/v2/images?marker=x",
        catalog.join("http://h/image/v2", "http://h/image", "/v2/images?marker=x"))
    end)

    it("keeps a full URL", function()
      assert.equal("http://o/v2.1/flavors?marker=1",
        catalog.join("http://h/v2.1", "http://h", "http://o/v2.1/flavors?marker=1"))
    end)
  end)

  it("maps aliases to canonical service types", function()
    assert.same({ "block-storage", "block-storage", "compute", "dns" },
      { catalog.canonical("volumev3"), catalog.canonical("volume"), catalog.canonical("compute"),
        catalog.canonical("dns") })
  end)
end)
