/*
 * script.c: `kupenstack exec FILE [ARGS]`, and ks.core.script, the module only its
 * scripts get: gather(fns) runs each function of the array fns as a task of its own,
 * concurrently (each yields on its own host calls), and returns once every one has
 * ended: an array, in the order of fns, of {ok = true, value = <its first result>} or
 * {ok = false, error = <the message, with a traceback>}. Tests use it to put many
 * requests in flight at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/script.h"

struct outcome {
	bool done;
	int status;
};

struct gather;

struct child {
	struct gather *g;
	struct ks_lua_task *t; /* NULL once it ended */
};

struct gather {
	struct ks_lua_op op;
	struct ks_lua *e;
	uv_timer_t timer; /* spawns the tasks, later resumes the caller: from the loop */
	int fns_ref, results_ref;
	int n, left;
	bool spawned, cancelled;
	struct child *children;
};

static void gather_closed(uv_handle_t *h)
{
	struct gather *g = h->data;

	free(g->children);
	free(g);
}

/* Drop the registry refs; the state may be closed before the timer's close callback. */
static void gather_release(struct gather *g)
{
	lua_State *L = ks_lua_state(g->e);

	luaL_unref(L, LUA_REGISTRYINDEX, g->fns_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, g->results_ref);
	uv_close((uv_handle_t *)&g->timer, gather_closed);
}

static void gather_fire(uv_timer_t *h);

static void child_done(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct child *c = data;
	struct gather *g = c->g;
	lua_State *L = ks_lua_state(g->e), *co = ks_lua_task_thread(t);

	c->t = NULL;
	lua_rawgeti(L, LUA_REGISTRYINDEX, g->results_ref);
	lua_createtable(L, 0, 2);
	lua_pushboolean(L, ok);
	lua_setfield(L, -2, "ok");
	if (ok && nres > 0) {
		lua_pushvalue(co, 1);
		lua_xmove(co, L, 1);
		lua_setfield(L, -2, "value");
	} else if (!ok) {
		lua_pushstring(L, msg);
		lua_setfield(L, -2, "error");
	}
	lua_rawseti(L, -2, (int)(c - g->children) + 1);
	lua_pop(L, 1);
	g->left--;
	if (g->left == 0 && g->spawned && !g->cancelled)
		uv_timer_start(&g->timer, gather_fire, 0, 0);
}

static void gather_resume(struct gather *g)
{
	lua_State *co = ks_lua_op_thread(&g->op);

	lua_rawgeti(co, LUA_REGISTRYINDEX, g->results_ref);
	gather_release(g);
	ks_lua_op_resume(&g->op, 1);
}

static void gather_fire(uv_timer_t *h)
{
	struct gather *g = h->data;
	lua_State *L = ks_lua_state(g->e);
	int i;

	if (g->spawned) {
		gather_resume(g);
		return;
	}
	for (i = 0; i < g->n; i++) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, g->fns_ref);
		lua_rawgeti(L, -1, i + 1);
		lua_remove(L, -2);
		g->children[i].t = ks_lua_spawn(g->e, 0, child_done, &g->children[i]);
	}
	g->spawned = true;
	if (g->left == 0)
		gather_resume(g);
}

static void gather_cancel(struct ks_lua_op *op)
{
	struct gather *g = KS_CONTAINER_OF(op, struct gather, op);
	int i;

	g->cancelled = true;
	for (i = 0; i < g->n; i++)
		if (g->children[i].t)
			ks_lua_task_cancel(g->children[i].t, "the task gathering it was cancelled");
	gather_release(g);
}

static int gather(lua_State *L)
{
	struct gather *g;
	int n, i;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = (int)lua_objlen(L, 1);
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		if (!lua_isfunction(L, -1))
			return luaL_argerror(L, 1, "an array of functions expected");
		lua_pop(L, 1);
	}
	ks_lua_check_yieldable(L);
	g = ks_xcalloc(1, sizeof(*g));
	g->e = ks_lua_from(L);
	g->n = g->left = n;
	g->children = ks_xcalloc((size_t)n + 1, sizeof(*g->children));
	for (i = 0; i < n; i++)
		g->children[i].g = g;
	lua_pushvalue(L, 1);
	g->fns_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_createtable(L, n, 0);
	g->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	g->op.cancel = gather_cancel;
	uv_timer_init(ks_lua_host(g->e)->loop, &g->timer);
	g->timer.data = g;
	uv_timer_start(&g->timer, gather_fire, 0, 0);
	return ks_lua_op_start(L, &g->op);
}

static int open_script(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "gather", gather },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}

static void finished(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct outcome *o = data;
	lua_State *co = ks_lua_task_thread(t);

	o->done = true;
	if (!ok) {
		fprintf(stderr, "%s\n", msg);
		o->status = 1;
	} else if (nres == 0 || lua_isnil(co, 1) ||
		   (lua_isboolean(co, 1) && lua_toboolean(co, 1))) {
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
	ks_lua_add_preload(ks_lua_state(e), "ks.core.script", open_script);
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
