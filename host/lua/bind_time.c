/*
 * bind_time.c: ks.core.time: now() (Unix seconds), monotonic(), sleep(s) (yields).
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"

struct sleep_op {
	struct ks_lua_op op;
	uv_timer_t timer;
};

static void closed(uv_handle_t *h)
{
	free(h->data);
}

static void fired(uv_timer_t *h)
{
	struct sleep_op *s = h->data;

	uv_close((uv_handle_t *)&s->timer, closed);
	ks_lua_op_resume(&s->op, 0);
}

static void cancel(struct ks_lua_op *op)
{
	struct sleep_op *s = KS_CONTAINER_OF(op, struct sleep_op, op);

	uv_close((uv_handle_t *)&s->timer, closed);
}

static int sleep_(lua_State *L)
{
	double secs = luaL_checknumber(L, 1);
	struct sleep_op *s;

	if (secs < 0 || secs > 86400)
		return luaL_argerror(L, 1, "seconds must be in [0, 86400]");
	ks_lua_check_yieldable(L);
	s = ks_xcalloc(1, sizeof(*s));
	s->op.cancel = cancel;
	uv_timer_init(ks_lua_host(ks_lua_from(L))->loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, fired, (uint64_t)(secs * 1000), 0);
	return ks_lua_op_start(L, &s->op);
}

static int now(lua_State *L)
{
	lua_pushnumber(L, ks_wall());
	return 1;
}

static int monotonic(lua_State *L)
{
	lua_pushnumber(L, (double)ks_now_ns() / 1e9);
	return 1;
}

int ks_lua_open_time(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "now", now },
		{ "monotonic", monotonic },
		{ "sleep", sleep_ },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
