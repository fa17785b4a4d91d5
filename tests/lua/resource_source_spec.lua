-- Unit tests of ks.resource.source's pure parts: the errors for a URL refused or failed,
-- the way the data gets in (web-download or stream), data refused before for its checksum.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local verdict -- what the stub of ks.core.transfer.check answers
package.preload["ks.core.transfer"] = function()
  return { check = function(url, allow) return verdict(url, allow) end }
end
local source = require "ks.resource.source"

local SRC = { url = "http://h/x.img", checksum = "ABC" }


describe("ks.resource.source", function()
  describe("check", function()
    it("a URL the host may fetch: nil; the setting allow_source_networks passed on", function()
      local seen
      verdict = function(_, allow)
        seen = allow
        return true
      end
      assert.is_nil(source.check("http://h/x", { allow_source_networks = "10.0.0.0/8" }))
      assert.equal("10.0.0.0/8", seen)
    end)

    it("refused: invalid, naming the field and the setting", function()
      verdict = function() return nil, { reason = "Refused", message = "127.0.0.1 is loopback" } end
      assert.same({ kind = "invalid", message = "spec.source.url: 127.0.0.1 is loopback: refused "
        .. "(the operator allows such networks with the Image plugin's setting "
        .. "allow_source_networks)" }, source.check("http://127.0.0.1/", {}))
    end)

    it("a bad URL is invalid; anything else (a name that does not resolve) waits 60 s", function()
      assert.same({ kind = "invalid", message = "spec.source.url: no host" },
        source.check_error({ reason = "BadURL", message = "no host" }))
      assert.same({ kind = "transient", backoff = 60, message = "spec.source.url: no such name "
        .. "(retrying in 60 s)" }, source.check_error({ reason = "Resolve", message = "no such name" }))
    end)
  end)

  describe("choose", function()
    it("a checksum, or the setting stream, streams", function()
      assert.equal("stream", source.choose("auto", "abc", { ["web-download"] = true }))
      assert.equal("stream", source.choose("stream", nil, { ["web-download"] = true }))
    end)

    it("web-download when the cloud offers it; stream when not, unless it was asked for", function()
      assert.equal("web-download", source.choose(nil, nil, { ["web-download"] = true }))
      assert.equal("stream", source.choose("auto", nil, {}))
      local how, err = source.choose("web-download", nil, {})
      assert.is_nil(how)
      assert.equal("invalid", err.kind)
      assert.matches("source_method is web%-download", err.message)
    end)
  end)

  describe("stream_error", function()
    it("refused, too large and a checksum mismatch are invalid, each saying why", function()
      assert.matches("^spec.source.url: 10.1.1.1 is private: refused %(",
        source.stream_error({ reason = "Refused", message = "10.1.1.1 is private: refused" }, SRC, "i1", {}).message)
      assert.same({ kind = "invalid", message = "spec.source.url: the data is larger than 5 MiB "
        .. "(the Image plugin's setting max_image_mb)" },
        source.stream_error({ reason = "TooLarge" }, SRC, "i1", { max_image_mb = 5 }))
      assert.same({ kind = "invalid", message = "the data at http://h/x.img has SHA-256 def, not abc "
        .. "(spec.source.checksum): refused" },
        source.stream_error({ reason = "ChecksumMismatch", sha256 = "def" }, SRC, "i1", {}))
    end)

    it("the source's HTTP status waits 60 s; anything else is transient, naming the image", function()
      assert.same({ kind = "transient", backoff = 60, message = "could not download http://h/x.img: "
        .. "HTTP 404 (retrying in 60 s)" },
        source.stream_error({ reason = "SourceStatus", source_status = 404.0 }, SRC, "i1", {}))
      local e = setmetatable({ reason = "Reset", side = "glance" }, { __tostring = function() return "reset" end })
      assert.same({ kind = "transient", message = "could not stream http://h/x.img into image i1 "
        .. "(glance): reset" }, source.stream_error(e, SRC, "i1", {}))
    end)
  end)

  describe("refused_before", function()
    it("data refused before for its checksum is refused again while the checksum is not its", function()
      assert.matches("has SHA%-256 def, not abc", source.refused_before("def", SRC).message)
      assert.is_nil(source.refused_before("abc", SRC))
      assert.is_nil(source.refused_before(nil, SRC))
      assert.is_nil(source.refused_before("def", { url = "http://h/x.img" }))
    end)
  end)
end)
