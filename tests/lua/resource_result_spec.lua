-- Unit tests of ks.resource.result: the conditions ks.resource writes, and how an error
-- becomes a result.
-- luacheck: std +busted
package.path = "tests/lua/?.lua;stdlib/?.lua;" .. package.path
require "shim.core"
local result = require "ks.resource.result"


local by_type = require("shim.resource").by_type

describe("ks.resource.result", function()
  describe("conditions", function()
    it("available: Available True, Progressing False, both Success", function()
      local c = result.available("ready")
      assert.same({ type = "Available", status = "True", reason = "Success", message = "ready" },
        by_type(c, "Available"))
      assert.same({ type = "Progressing", status = "False", reason = "Success",
                    message = "nothing to do" }, by_type(c, "Progressing"))
    end)

    it("progressing: Available False, Progressing True, with the reason and message", function()
      local c = result.progressing("Deleting", "going")
      assert.same({ "False", "Deleting", "going" },
        { by_type(c, "Available").status, by_type(c, "Available").reason, by_type(c, "Available").message })
      assert.equal("True", by_type(c, "Progressing").status)
    end)

    it("waiting: Progressing Waiting, and another look in 10 s unless told", function()
      local r = result.waiting("for x")
      assert.equal(10, r.requeue_after)
      assert.equal("Waiting", by_type(r.conditions, "Progressing").reason)
      assert.equal("for x", by_type(r.conditions, "Available").message)
      assert.equal(3, result.waiting("y", 3).requeue_after)
    end)
  end)

  describe("errored", function()
    it("Available and Progressing False, reason ResourceError, the message on both", function()
      local c = result.errored("it broke")
      assert.same({ type = "Available", status = "False", reason = "ResourceError",
                    message = "it broke" }, by_type(c, "Available"))
      assert.same({ type = "Progressing", status = "False", reason = "ResourceError",
                    message = "it broke" }, by_type(c, "Progressing"))
    end)
  end)

  describe("errors to results", function()
    it("describe: a string, an error's __tostring, its message, or its fields", function()
      assert.equal("boom", result.describe("boom"))
      assert.equal("it failed", result.describe({ message = "it failed" }))
      local e = setmetatable({}, { __tostring = function() return "printed" end })
      assert.equal("printed", result.describe(e))
      assert.equal("{a=1}", result.describe({ a = 1 }))
    end)

    it("invalid input is terminal, reason InvalidConfiguration, the status kept", function()
      local st = { id = "x" }
      local r = result.failed({ kind = "invalid", message = "size: too big" }, st)
      assert.same({ status = st, error = "size: too big", terminal = true,
                    reason = "InvalidConfiguration" }, r)
    end)

    it("quota waits (60 s unless the error says) and says so", function()
      local r = result.failed({ kind = "quota", message = "Quota exceeded" })
      assert.same({ error = "Quota exceeded (quota: retrying in 60 s)", reason = "Transient",
                    backoff = 60 }, r)
      assert.equal(120, result.failed({ kind = "quota", message = "q", backoff = 120 }).backoff)
    end)

    it("an error with a backoff keeps it; anything else is Transient, retried by the host", function()
      assert.same({ error = "busy", reason = "Transient", backoff = 7 },
        result.failed({ kind = "transient", message = "busy", backoff = 7 }))
      local r = result.failed("connection refused")
      assert.same({ error = "connection refused", reason = "Transient" }, r)
      assert.is_nil(r.terminal)
    end)

    it("terminal: a message that stops, InvalidConfiguration unless told", function()
      assert.same({ error = "no", terminal = true, reason = "InvalidConfiguration" },
        result.terminal("no"))
      assert.equal("Other", result.terminal("no", nil, "Other").reason)
    end)
  end)
end)
