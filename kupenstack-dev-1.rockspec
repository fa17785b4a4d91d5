-- kupenstack-dev-1.rockspec: the host binary and its Lua library through `make install`.
--   luarocks make kupenstack-dev-1.rockspec        (from the top of the tree)
-- PREFIX is the rock's own directory, for the build too: the binary compiles in
-- KS_DATA = PREFIX/share/kupenstack and so finds the library it was installed with
-- (PREFIX/share/kupenstack/stdlib). The library also goes to LUADIR, the Lua module path.
package = "kupenstack"
version = "dev-1"
source = { url = "git+file://." }
description = {
  summary = "KupenStack: OpenStack as code on Kubernetes (host and Lua stdlib)",
  detailed = [[
    A C host (libuv, libcurl, cJSON, LuaJIT) that runs Lua plugins as Kubernetes
    controllers, and the Lua library (ks.*) those plugins require.
  ]],
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.1" }
build = {
  type = "make",
  build_variables = { CFLAGS = "$(CFLAGS)", PREFIX = "$(PREFIX)" },
  install_variables = { PREFIX = "$(PREFIX)", LUA_DIR = "$(LUADIR)" },
}
