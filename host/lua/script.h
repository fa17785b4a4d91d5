#pragma once
/*
 * script.h: run one Lua file as a task in a fresh sandboxed state (`kupenstack exec`):
 * the way to try the host modules and the library by hand, and how the Lua tests run
 * inside the real host.
 */
#include "lua/engine.h"

/*
 * Load path and run it with args (available as the chunk's `...`), driving host->loop
 * until the task ends. Returns the exit status: 0 when the chunk returned nothing,
 * true or 0; its number when it returned one; 1 on false or an error (printed to
 * stderr with a traceback); 2 when the file cannot be read or compiled.
 */
int ks_lua_script_run(const struct ks_lua_host *host, const struct ks_lua_limits *limits,
		      const char *path, int argc, char **argv);
