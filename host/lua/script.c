/*
 * script.c: `kupenstack exec FILE [ARGS]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/script.h"

struct outcome {
	bool done;
	int status;
};

static void finished(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct outcome *o = data;
	lua_State *co = ks_lua_task_thread(t);

	o->done = true;
	if (!ok) {
		fprintf(stderr, "%s\n", msg);
		o->status = 1;
	} else if (nres == 0 || lua_isnil(co, 1) || (lua_isboolean(co, 1) && lua_toboolean(co, 1))) {
		o->status = 0;
	} else if (lua_type(co, 1) == LUA_TNUMBER) {
		o->status = (int)lua_tonumber(co, 1);
	} else {
		o->status = 1;
	}
}

int ks_lua_script_run(const struct ks_lua_host *host, const struct ks_lua_limits *limits,
		      const char *path, int argc, char **argv)
{
	struct outcome o = { false, 0 };
	struct ks_lua *e;
	char *src, *err = NULL, *chunk;
	size_t len;
	int rc, i;

	src = ks_read_file(path, &len, &rc);
	if (!src) {
		fprintf(stderr, "kupenstack exec: cannot read %s: %s\n", path, strerror(-rc));
		return 2;
	}
	e = ks_lua_new(path, host, limits);
	ks_lua_set_print_stdout(e, true);
	chunk = ks_xasprintf("@%s", path);
	rc = ks_lua_compile(e, chunk, src, len, &err);
	free(chunk);
	free(src);
	if (rc != 0) {
		fprintf(stderr, "kupenstack exec: %s\n", err);
		free(err);
		ks_lua_free(e);
		return 2;
	}
	for (i = 0; i < argc; i++)
		lua_pushstring(ks_lua_state(e), argv[i]);
	ks_lua_spawn(e, argc, finished, &o);
	while (!o.done && uv_run(host->loop, UV_RUN_ONCE))
		;
	if (!o.done) {
		fprintf(stderr, "kupenstack exec: %s stopped waiting with nothing left to run\n",
			path);
		o.status = 1;
	}
	ks_lua_free(e);
	return o.status;
}
