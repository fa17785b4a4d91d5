-- .luacheckrc: luacheck's settings for the tree (tests/lint, `make lint`).
-- Plugins and the library run in the host's sandbox (host/lua/engine.c): only these
-- globals exist there, so using any other (io, debug, os.execute, loadstring, ...) is a
-- lint error here rather than a nil at run time.
local sandbox = {
  globals = {},
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
    "tostring", "type", "unpack", "xpcall", "rawequal", "rawget", "rawset", "_VERSION",
    "setmetatable", "getmetatable", "load", "print", "require", "_G",
    string = { other_fields = true },
    table = { other_fields = true },
    math = { other_fields = true },
    coroutine = { other_fields = true },
    os = { fields = { "time", "clock", "date", "difftime" } },
  },
}
stds.ks_sandbox = sandbox

std = "luajit"
files["plugins/"] = { std = "ks_sandbox" }
files["stdlib/"] = { std = "ks_sandbox" }
files["tests/plugins/"] = { std = "ks_sandbox" }
files["tests/e2e/plugins/"] = { std = "ks_sandbox" }
files["deploy/"] = { std = "ks_sandbox" }
-- Specs run under busted (plain LuaJIT), with its globals.
files["**/*_spec.lua"] = { std = "luajit+busted" }
-- This plugin tries what the sandbox refuses (io, os.execute, debug, ...), on purpose.
files["tests/e2e/plugins/sandbox/"] = { std = "luajit" }
