/*
 * bind_amqp.c: ks.core.amqp, a subscription to messages on an AMQP 0-9-1 bus (host/amqp.c:
 * a consumer on a thread of its own, delivering on the loop).
 *
 *   local sub, err = amqp.subscribe{ url = "amqp://user:pass@127.0.0.1:5672/",
 *           exchange = "nova", keys = { "versioned_notifications.info" },
 *           queue = nil }                    -- nil: an exclusive queue of its own
 *   local body, key = sub:next(5)            -- waits up to 5 s (the task yields)
 *   -- nil, { reason = "Timeout" } when nothing came; nil, { reason = "Closed" } when
 *   -- another task closed it meanwhile (next() on a closed subscription raises)
 *   sub:stats()   -- { connected =, connects =, failures =, messages =, dropped =, error = }
 *   sub:close()   -- also when the subscription is garbage
 *
 * Messages are kept for next() up to 1024; beyond, the oldest are dropped and counted.
 * At most MAX_SUBS subscriptions are open at once in one Lua state (each is a connection
 * and a thread): one more returns nil, { reason = "LimitExceeded" } until one is closed
 * (or collected), so a plugin cannot make the host open unbounded queues.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "amqp.h"
#include "ks.h"
#include "list.h"
#include "lua/bind.h"
#include "lua/engine.h"

#define SUB_MT "ks.core.amqp.subscription"
#define MAX_KEYS 32
#define MAX_KEPT 1024
#define MAX_SUBS 4 /* said in the message of subscribe() */

static char open_key; /* the registry's count of open subscriptions */

struct kept {
	struct ks_list link;
	char *key;
	size_t len;
	char body[];
};

struct next_op;

/* Heap-allocated (it owns a uv handle); the userdata holds a pointer to it. */
struct sub {
	struct ks_amqp *amqp;
	uv_timer_t timer;
	struct ks_list kept;
	size_t nkept;
	uint64_t dropped;
	struct next_op *waiter;
	bool closed;
};

struct next_op {
	struct ks_lua_op op;
	struct sub *s;
};

static void sub_freed(uv_handle_t *h)
{
	struct sub *s = h->data;

	while (!ks_list_empty(&s->kept)) {
		struct kept *k = KS_CONTAINER_OF(ks_list_first(&s->kept), struct kept, link);

		ks_list_del(&k->link);
		free(k);
	}
	free(s);
}

/* The kept message at 1: its body, then its routing key (for ks_lua_push_capped). */
static int push_body(lua_State *L)
{
	const struct kept *k = lua_touserdata(L, 1);

	lua_pushlstring(L, k->body, k->len);
	return 1;
}

static int push_key(lua_State *L)
{
	const struct kept *k = lua_touserdata(L, 1);

	lua_pushstring(L, k->key);
	return 1;
}

/* Resume the waiting task with the oldest message (true), or leave it waiting. */
static bool deliver(struct sub *s)
{
	struct next_op *w = s->waiter;
	struct kept *k;
	int n = 2;

	if (!w || ks_list_empty(&s->kept))
		return false;
	k = KS_CONTAINER_OF(ks_list_first(&s->kept), struct kept, link);
	ks_list_del(&k->link);
	s->nkept--;
	s->waiter = NULL;
	uv_timer_stop(&s->timer);
	if (ks_lua_push_capped(&w->op, push_body, k) != 0) {
		n = ks_lua_fail(ks_lua_op_thread(&w->op), 0, "MemoryLimit",
				"the message does not fit in the plugin's memory limit");
	} else if (ks_lua_push_capped(&w->op, push_key, k) != 0) {
		lua_pop(ks_lua_op_thread(&w->op), 1); /* the body */
		n = ks_lua_fail(ks_lua_op_thread(&w->op), 0, "MemoryLimit",
				"the message does not fit in the plugin's memory limit");
	}
	free(k);
	ks_lua_op_resume(&w->op, n);
	free(w);
	return true;
}

static void on_message(const char *body, size_t len, const char *key, void *data)
{
	struct sub *s = data;
	size_t klen = strlen(key);
	struct kept *k = ks_xmalloc(sizeof(*k) + len + klen + 1);

	k->len = len;
	memcpy(k->body, body, len);
	k->key = k->body + len;
	memcpy(k->key, key, klen + 1);
	ks_list_add_tail(&s->kept, &k->link);
	if (++s->nkept > MAX_KEPT) {
		struct kept *old = KS_CONTAINER_OF(ks_list_first(&s->kept), struct kept, link);

		ks_list_del(&old->link);
		free(old);
		s->nkept--;
		s->dropped++;
	}
	deliver(s);
}

/* Wake the waiting task with nil, {reason = reason}. */
static void wake_empty(struct sub *s, const char *reason, const char *message)
{
	struct next_op *w = s->waiter;
	int n;

	if (!w)
		return;
	s->waiter = NULL;
	uv_timer_stop(&s->timer);
	n = ks_lua_fail(ks_lua_op_thread(&w->op), 0, reason, message);
	ks_lua_op_resume(&w->op, n);
	free(w);
}

/* Due: the oldest kept message, else the wait timed out. */
static void on_timer(uv_timer_t *t)
{
	struct sub *s = t->data;

	if (s->closed) { /* closed while a task waited: it learns so, then the timer goes */
		wake_empty(s, "Closed", "the subscription was closed");
		uv_close((uv_handle_t *)&s->timer, sub_freed);
	} else if (!deliver(s)) {
		wake_empty(s, "Timeout", "no message came in time");
	}
}

static void cancel_next(struct ks_lua_op *op)
{
	struct next_op *w = KS_CONTAINER_OF(op, struct next_op, op);

	struct sub *s = w->s;

	s->waiter = NULL;
	uv_timer_stop(&s->timer);
	if (s->closed) /* the timer was kept only to wake this task */
		uv_close((uv_handle_t *)&s->timer, sub_freed);
	free(w);
}

/* Stop the consumer; a task waiting in next() is woken through the loop (never from
 * inside the caller's C call), then the subscription is freed. */
static void sub_close(struct sub *s)
{
	if (s->closed)
		return;
	s->closed = true;
	ks_amqp_stop(s->amqp);
	if (s->waiter)
		uv_timer_start(&s->timer, on_timer, 0, 0);
	else
		uv_close((uv_handle_t *)&s->timer, sub_freed);
}

static struct sub *check_sub(lua_State *L)
{
	struct sub **p = luaL_checkudata(L, 1, SUB_MT);

	if (!*p)
		luaL_error(L, "amqp: the subscription is closed");
	return *p;
}

static int sub_next(lua_State *L)
{
	struct sub *s = check_sub(L);
	double timeout = luaL_optnumber(L, 2, 30);
	double left = ks_lua_deadline(L) - (double)ks_now_ns() / 1e9;
	struct next_op *w;

	if (timeout < 0 || timeout > 86400)
		return luaL_error(L, "amqp: next(timeout): timeout must be in [0, 86400] seconds");
	if (s->waiter)
		return luaL_error(L, "amqp: next() is already waiting in another task");
	if (left > 0 && left < timeout)
		timeout = left;
	ks_lua_check_yieldable(L);
	w = ks_xcalloc(1, sizeof(*w));
	w->op.cancel = cancel_next;
	w->s = s;
	s->waiter = w;
	/* A kept message is delivered at once, but through the loop, never inside next(). */
	uv_timer_start(&s->timer, on_timer,
		       ks_list_empty(&s->kept) ? (uint64_t)(timeout * 1000) : 0, 0);
	return ks_lua_op_start(L, &w->op);
}

static int sub_stats(lua_State *L)
{
	struct sub *s = check_sub(L);
	struct ks_amqp_stats st;

	ks_amqp_stats(s->amqp, &st);
	lua_createtable(L, 0, 6);
	lua_pushboolean(L, st.connected);
	lua_setfield(L, -2, "connected");
	lua_pushnumber(L, (lua_Number)st.connects);
	lua_setfield(L, -2, "connects");
	lua_pushnumber(L, (lua_Number)st.failures);
	lua_setfield(L, -2, "failures");
	lua_pushnumber(L, (lua_Number)st.messages);
	lua_setfield(L, -2, "messages");
	lua_pushnumber(L, (lua_Number)(st.dropped + s->dropped));
	lua_setfield(L, -2, "dropped");
	lua_pushstring(L, st.last_error);
	lua_setfield(L, -2, "error");
	return 1;
}

/* Add d to the number of open subscriptions of L's state; the new number. */
static int count_open(lua_State *L, int d)
{
	int n;

	lua_pushlightuserdata(L, &open_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	n = (int)lua_tointeger(L, -1) + d;
	lua_pop(L, 1);
	lua_pushlightuserdata(L, &open_key);
	lua_pushinteger(L, n);
	lua_rawset(L, LUA_REGISTRYINDEX);
	return n;
}

static int sub_gc(lua_State *L)
{
	struct sub **p = luaL_checkudata(L, 1, SUB_MT);

	if (*p) {
		sub_close(*p);
		count_open(L, -1);
	}
	*p = NULL;
	return 0;
}

/* opts.keys (a list of strings) into keys, NULL-terminated; the table holds the strings. */
static void read_keys(lua_State *L, const char **keys)
{
	int n;

	lua_getfield(L, 1, "keys");
	if (!lua_istable(L, -1))
		luaL_error(L, "amqp.subscribe: opts.keys must be a list of routing keys");
	n = (int)lua_objlen(L, -1);
	if (n < 1 || n > MAX_KEYS)
		luaL_error(L, "amqp.subscribe: opts.keys must have 1 to %d routing keys", MAX_KEYS);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, -1, i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "amqp.subscribe: opts.keys[%d] must be a string", i + 1);
		keys[i] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	keys[n] = NULL;
	lua_pop(L, 1);
}

static const char *opt_string(lua_State *L, const char *k)
{
	const char *v;

	lua_getfield(L, 1, k);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "amqp.subscribe: opts.%s must be a string", k);
	v = lua_tostring(L, -1);
	lua_pop(L, 1);
	return v;
}

static int subscribe(lua_State *L)
{
	struct ks_lua *e = ks_lua_from(L);
	const char *keys[MAX_KEYS + 1];
	struct ks_amqp_opts o = { 0 };
	struct sub *s, **p;
	const char *err;

	luaL_checktype(L, 1, LUA_TTABLE);
	o.url = opt_string(L, "url");
	o.exchange = opt_string(L, "exchange");
	o.queue = opt_string(L, "queue");
	read_keys(L, keys);
	o.keys = keys;
	if (count_open(L, 0) >= MAX_SUBS)
		return ks_lua_fail(L, 0, "LimitExceeded",
				   "at most 4 subscriptions are open at once; "
				   "close one first");
	p = lua_newuserdata(L, sizeof(*p)); /* before the consumer: a raise here leaks nothing */
	*p = NULL;
	luaL_getmetatable(L, SUB_MT);
	lua_setmetatable(L, -2);
	s = ks_xcalloc(1, sizeof(*s));
	ks_list_init(&s->kept);
	s->amqp = ks_amqp_start(ks_lua_host(e)->loop, &o, on_message, s, &err);
	if (!s->amqp) {
		free(s);
		return ks_lua_fail(L, 0, "InvalidConfiguration", err);
	}
	uv_timer_init(ks_lua_host(e)->loop, &s->timer);
	s->timer.data = s;
	*p = s;
	count_open(L, 1);
	return 1;
}

static int sub_close_l(lua_State *L)
{
	return sub_gc(L);
}

int ks_lua_open_amqp(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "next", sub_next },
		{ "stats", sub_stats },
		{ "close", sub_close_l },
		{ NULL, NULL },
	};
	static const luaL_Reg fns[] = {
		{ "subscribe", subscribe },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, SUB_MT)) {
		lua_newtable(L);
		luaL_register(L, NULL, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, sub_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	lua_newtable(L);
	luaL_register(L, NULL, fns);
	return 1;
}
