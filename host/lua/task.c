/*
 * task.c: coroutines that run plugin code, each with an instruction budget and a
 * wall-time deadline, and the ops through which bindings yield them on I/O.
 *
 * A limit, once exceeded, is final. The count hook (every HOOK_PERIOD VM instructions of
 * any coroutine of the state, the JIT being off) charges the running task and checks its
 * budget, its deadline and its slice against a monotonic clock (a libuv timer cannot fire
 * while the loop is inside lua_resume). The first breach records the reason in the task
 * (t->stop) and raises it. Lua code can catch an error only through pcall, xpcall and
 * coroutine.resume, and the sandbox's versions of those (engine.c) hand their results to
 * ks_lua_stop_check(), which raises the recorded reason again while the task is stopped;
 * the hook raises it again at every later tick too. So whatever the plugin wraps around
 * its loop, the error climbs out of every level to lua_resume, and the task ends with the
 * recorded reason, not with whatever value the plugin's handlers made of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "log.h"
#include "metrics.h"
#include "lua/engine.h"
#include "lua/internal.h"

#define HOOK_PERIOD 1000
/* What a host call into a plugin's value (ks_lua_pcall_limited) may cost. */
#define HOST_CALL_INSTRUCTIONS 1000000
#define HOST_CALL_NS 1000000000ull

struct ks_lua_task {
	struct ks_lua *e;
	lua_State *co;
	int ref; /* registry ref keeping co alive */
	ks_lua_done_cb done;
	void *data;
	struct ks_lua_op *op; /* pending, or NULL */
	uint64_t instructions;
	uint64_t deadline_ns;
	uint64_t slice_ns; /* this resume must yield before then */
	char stop[160];	   /* why the task was stopped (a limit), or "" */
	const char *limit; /* which limit stopped it, for the metric */
	uv_timer_t timer;
	bool finished;
	struct ks_lua_task *prev, *next;
};

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* Raise the reason t was stopped for, on L (t's thread or a coroutine of the state). */
static int raise_stop(lua_State *L, struct ks_lua_task *t)
{
	lua_pushstring(L, t->stop);
	return lua_error(L);
}

/* Record the first limit t breached, if any. */
static void check_limits(struct ks_lua_task *t)
{
	const struct ks_lua_limits *lim = &t->e->limits;
	uint64_t now;

	if (t->instructions > lim->instructions) {
		t->limit = "instructions";
		snprintf(t->stop, sizeof(t->stop),
			 "instruction budget exceeded: more than %.0f million instructions",
			 (double)lim->instructions / 1e6);
		return;
	}
	now = ks_now_ns();
	t->limit = now > t->deadline_ns ? "seconds" : "slice";
	if (now > t->deadline_ns)
		snprintf(t->stop, sizeof(t->stop), "wall time limit exceeded: %g s", lim->seconds);
	else if (now > t->slice_ns)
		snprintf(t->stop, sizeof(t->stop),
			 "wall time limit exceeded: Lua held the host's loop for %g s without "
			 "letting it turn",
			 lim->slice);
}

void ks_lua_charge(lua_State *L, uint64_t n)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	if (!t)
		return;
	t->instructions += n;
	if (!t->stop[0])
		check_limits(t);
	if (t->stop[0])
		raise_stop(L, t);
}

int ks_lua_stop_check(lua_State *L)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	if (t && t->stop[0])
		return raise_stop(L, t);
	return lua_gettop(L);
}

int ks_lua_stopped(lua_State *L)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	lua_pushboolean(L, t && t->stop[0]);
	return 1;
}

/* Runs every HOOK_PERIOD instructions of any coroutine of the state. */
static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	ks_lua_charge(L, HOOK_PERIOD);
}

void ks_lua_task_init(struct ks_lua *e)
{
	lua_sethook(e->L, hook, LUA_MASKCOUNT, HOOK_PERIOD);
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void unlink_task(struct ks_lua_task *t)
{
	struct ks_lua *e = t->e;

	if (t->prev)
		t->prev->next = t->next;
	else
		e->tasks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	e->ntasks--;
}

/* The error at the top of co as text, with co's traceback, pushed on e->L. */
static const char *error_text(struct ks_lua_task *t)
{
	lua_State *co = t->co, *L = t->e->L;
	const char *msg = NULL;

	if (t->stop[0]) {
		luaL_traceback(L, co, t->stop, 0);
		return lua_tostring(L, -1);
	}
	if (lua_type(co, -1) == LUA_TTABLE) {
		lua_getfield(co, -1, "message");
		msg = lua_tostring(co, -1);
		lua_pop(co, 1);
	} else {
		msg = lua_tostring(co, -1);
	}
	if (t->e->over_memory && (!msg || strstr(msg, "not enough memory")))
		msg = "memory limit exceeded";
	luaL_traceback(L, co, msg ? msg : "(error object is not a string)", 0);
	return lua_tostring(L, -1);
}

/* kupenstack_plugin_limit_stops_total{plugin, limit}: a task ended by a limit. */
static void count_stop(struct ks_lua *e, const char *limit)
{
	struct ks_metric_family *f;

	if (!e->host.metrics)
		return;
	f = ks_metrics_counter(e->host.metrics, "kupenstack_plugin_limit_stops_total",
			       "Tasks (reconciles, loads, maps) of a plugin that a limit of the "
			       "sandbox ended, by limit: instructions, seconds, slice or memory.",
			       KS_LABELS("plugin", "limit"));
	ks_metric_inc(ks_metric_child(f, KS_LABELS(e->name, limit)));
}

static void finish(struct ks_lua_task *t, bool ok, int nres, const char *msg)
{
	struct ks_lua *e = t->e;

	if (t->stop[0])
		count_stop(e, t->limit);
	else if (!ok && e->over_memory)
		count_stop(e, "memory");

	t->finished = true;
	unlink_task(t);
	uv_timer_stop(&t->timer);
	t->done(t, ok, nres, msg, t->data);
	luaL_unref(e->L, LUA_REGISTRYINDEX, t->ref);
	uv_close((uv_handle_t *)&t->timer, timer_closed);
}

/*
 * The slice is shared by all Lua run in one turn of the loop (tasks of every state): a
 * controller may start several reconciles in one callback, and their runs add up to how
 * long the loop is held. The loop's cached time (uv_now) changes once per turn, which
 * tells turns apart. A run's deadline is what its turn has left of the slice.
 */
static struct {
	const uv_loop_t *loop;
	uint64_t now_ms;   /* uv_now() of the turn */
	uint64_t spent_ns; /* Lua run in it so far */
} turn;

static uint64_t slice_left(const struct ks_lua *e)
{
	uint64_t slice = (uint64_t)(e->limits.slice * 1e9);

	if (turn.loop != e->host.loop || turn.now_ms != uv_now(e->host.loop)) {
		turn.loop = e->host.loop;
		turn.now_ms = uv_now(e->host.loop);
		turn.spent_ns = 0;
	}
	return turn.spent_ns < slice ? slice - turn.spent_ns : 0;
}

static void run(struct ks_lua_task *t, int nargs)
{
	struct ks_lua *e = t->e;
	uint64_t start = ks_now_ns();
	int rc, top;

	e->running = t;
	e->enforce = true;
	t->slice_ns = e->limits.slice > 0 ? start + slice_left(e) : UINT64_MAX;
	rc = lua_resume(t->co, nargs);
	turn.spent_ns += ks_now_ns() - start;
	e->enforce = false;
	e->running = NULL;
	if (rc == LUA_YIELD && t->op)
		return; /* stopped or not: a stopped task raises at its first tick after */
	if (rc == LUA_YIELD) {
		lua_pushliteral(t->co, "coroutine.yield outside a host call: plugins yield only "
				       "through ks.core modules");
		rc = LUA_ERRRUN;
	}
	if (rc == 0) {
		finish(t, true, lua_gettop(t->co), NULL);
		return;
	}
	top = lua_gettop(e->L);
	finish(t, false, 0, error_text(t));
	lua_settop(e->L, top);
	/* LuaJIT has no emergency collection: after a task hit the cap, collect now (the
	 * cap is off here), or its garbage would fail the next reconciles too. */
	if (e->over_memory) {
		lua_gc(e->L, LUA_GCCOLLECT, 0);
		e->over_memory = false;
	}
}

static void on_deadline(uv_timer_t *h)
{
	struct ks_lua_task *t = h->data;
	char msg[96];

	snprintf(msg, sizeof(msg), "wall time limit exceeded: %d s while waiting",
		 (int)t->e->limits.seconds);
	ks_lua_task_cancel(t, msg);
}

struct ks_lua_task *ks_lua_spawn(struct ks_lua *e, int nargs, ks_lua_done_cb done, void *data)
{
	lua_State *L = e->L;
	struct ks_lua_task *t = ks_xcalloc(1, sizeof(*t));

	ks_require(e->running == NULL);
	t->e = e;
	t->done = done;
	t->data = data;
	t->co = lua_newthread(L);
	t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_xmove(L, t->co, nargs + 1);
	t->deadline_ns = ks_now_ns() + (uint64_t)(e->limits.seconds * 1e9);
	uv_timer_init(e->host.loop, &t->timer);
	t->timer.data = t;
	uv_timer_start(&t->timer, on_deadline, (uint64_t)(e->limits.seconds * 1000) + 1, 0);
	e->over_memory = false;
	t->next = e->tasks;
	if (e->tasks)
		e->tasks->prev = t;
	e->tasks = t;
	e->ntasks++;
	run(t, nargs);
	return t->finished ? NULL : t;
}

void ks_lua_task_cancel(struct ks_lua_task *t, const char *why)
{
	struct ks_lua_op *op = t->op;
	char msg[256];

	if (t->finished)
		return;
	ks_require(t->e->running != t);
	t->op = NULL;
	if (op)
		op->cancel(op);
	snprintf(msg, sizeof(msg), "cancelled: %s", why);
	lua_settop(t->co, 0);
	lua_pushstring(t->co, msg);
	finish(t, false, 0, msg);
}

void ks_lua_task_cancel_all(struct ks_lua *e, const char *why)
{
	while (e->tasks)
		ks_lua_task_cancel(e->tasks, why);
}

void ks_lua_cancel_all(struct ks_lua *e, const char *why)
{
	ks_lua_task_cancel_all(e, why);
}

size_t ks_lua_tasks(const struct ks_lua *e)
{
	return e->ntasks;
}

lua_State *ks_lua_task_thread(struct ks_lua_task *t)
{
	return t->co;
}

uint64_t ks_lua_task_instructions(const struct ks_lua_task *t)
{
	return t->instructions;
}

struct ks_lua_task *ks_lua_running(struct ks_lua *e)
{
	return e->running;
}

double ks_lua_deadline(lua_State *L)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	return t ? secs(t->deadline_ns) : 0;
}

void ks_lua_check_yieldable(lua_State *L)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	if (!t || t->co != L)
		luaL_error(L, "this host call waits for I/O: call it from the reconcile itself, "
			      "not from inside a coroutine of your own or while loading");
}

int ks_lua_op_start(lua_State *L, struct ks_lua_op *op)
{
	struct ks_lua_task *t = ks_lua_from(L)->running;

	ks_require(t && t->co == L && t->op == NULL);
	op->task = t;
	t->op = op;
	return lua_yield(L, 0);
}

lua_State *ks_lua_op_thread(struct ks_lua_op *op)
{
	return op->task->co;
}

void ks_lua_op_resume(struct ks_lua_op *op, int n)
{
	struct ks_lua_task *t = op->task;

	ks_require(t->op == op);
	t->op = NULL;
	run(t, n);
}

int ks_lua_push_capped(struct ks_lua_op *op, lua_CFunction push, void *data)
{
	struct ks_lua_task *t = op->task;
	struct ks_lua *e = t->e;
	lua_State *L = e->L;
	bool over = e->over_memory;
	int top = lua_gettop(L), rc;

	ks_require(e->running == NULL && t->op == op);
	lua_pushcfunction(L, push);
	lua_pushlightuserdata(L, data);
	e->enforce = true;
	rc = lua_pcall(L, 1, 1, 0);
	e->enforce = false;
	if (rc == 0) {
		lua_xmove(L, t->co, 1);
		return 0;
	}
	lua_settop(L, top);
	e->over_memory = over;
	lua_gc(L, LUA_GCCOLLECT, 0); /* what was built so far */
	return rc == LUA_ERRMEM ? -ENOMEM : -EINVAL;
}

int ks_lua_pcall_limited(struct ks_lua *e, lua_State *L, int nargs, int nres)
{
	struct ks_lua_task host_call = { .e = e };
	uint64_t now = ks_now_ns(), left = slice_left(e);
	int rc;

	ks_require(e->running == NULL);
	host_call.instructions = e->limits.instructions > HOST_CALL_INSTRUCTIONS
					 ? e->limits.instructions - HOST_CALL_INSTRUCTIONS
					 : 0;
	host_call.deadline_ns = now + HOST_CALL_NS;
	host_call.slice_ns = e->limits.slice > 0 ? now + left : UINT64_MAX;
	e->running = &host_call;
	e->enforce = true;
	rc = lua_pcall(L, nargs, nres, 0);
	e->enforce = false;
	e->running = NULL;
	turn.spent_ns += ks_now_ns() - now;
	return rc;
}
