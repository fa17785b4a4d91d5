package = "kupenstack"
version = "dev-1"
source = { url = "git+file://." }
description = {
  summary = "KupenStack: OpenStack as code on Kubernetes (host and Lua stdlib)",
  license = "Apache-2.0",
}
dependencies = { "lua >= 5.1" }
build = {
  type = "make",
  build_variables = { CFLAGS = "$(CFLAGS)" },
  install_variables = { PREFIX = "$(PREFIX)", LUA_DIR = "$(LUADIR)" },
}
