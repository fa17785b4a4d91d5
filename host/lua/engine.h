#pragma once
/*
 * engine.h: one sandboxed LuaJIT state (one loaded plugin version, or one script
 * run by `kupenstack exec`) and the coroutines ("tasks") that run in it.
 *
 * A state has a memory cap (its allocator refuses past it while Lua code runs), the
 * JIT off (so the instruction-count hook fires everywhere), an allow-listed and
 * frozen global environment, and a `require` that finds the host modules
 * (package.preload["ks.core.<x>"], one bind_<x>.c each) and the Lua library
 * (source text only, from the stdlib directory).
 *
 * Every call into Lua runs in a task: a coroutine with an instruction budget and a
 * wall-time deadline. A binding that does I/O starts it on the loop, links a
 * struct ks_lua_op to the running task and yields; the I/O's completion (always
 * from the loop) pushes the results and resumes the task. Cancelling a task
 * cancels its pending ops, so nothing calls back into a dead coroutine.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

struct ks_http;
struct ks_kube;
struct ks_events;
struct ks_metrics;
struct ks_cache;
struct ks_kube_res;
struct ks_lua_fake;
struct ks_lua_op;

struct ks_lua_limits {
	size_t memory;	       /* bytes; 0: 64 MiB */
	uint64_t instructions; /* per task; 0: 100 million */
	double seconds;	       /* per task, wall time; 0: 300 */
	/* How long Lua may hold the loop in one turn (wall time, shared by every run in
	 * that turn; task.c); 0: no such limit. Plugins cannot declare it: the operator's
	 * cap sets it. */
	double slice;
};

/* What the bindings reach through the engine; none of it is owned by the engine. */
/* One of the operator's settings: a name and its text (`kupenstack run --set NAME=VALUE`
 * or --set-file NAME=FILE). The host gives them no meaning; plugins and the library read
 * them through ks.core.config.get(name). */
struct ks_setting {
	const char *name;
	const char *value;
};

struct ks_lua_host {
	uv_loop_t *loop;
	struct ks_http *http;
	struct ks_kube *kube;	    /* NULL: ks.core.kube writes fail with a message */
	struct ks_events *events;   /* NULL: events are logged only */
	struct ks_metrics *metrics; /* NULL: plugin metrics are kept but not exported */
	const char *stdlib_dir;	    /* where require finds "ks.x" as ks/x.lua; NULL: none */
	/* The cache holding kind res, for kube.get/list; NULL when none is kept. */
	struct ks_cache *(*cache_for)(void *data, const struct ks_kube_res *res);
	void *cache_data;
	/* The operator's settings (ks.core.config), n of them; not owned. */
	const struct ks_setting *settings;
	size_t nsettings;
	/* The helm binary for ks.core.helm; NULL: $KS_HELM, else "helm" on PATH. */
	const char *helm;
	/* Caps on every limit of the state (what a plugin declares, the defaults, and the
	 * limits its top level loads under); 0 fields: no cap. */
	struct ks_lua_limits caps;
	/* Non-NULL: ks.core.http, kube.fetch/apply/create/patch/delete and ctx.event are
	 * handed to it first (lua/fake.h): plugin tests and dry runs. Not owned. */
	struct ks_lua_fake *fake;
};

struct ks_lua;
struct ks_lua_task;

/*
 * A new state. name labels its log lines ("flavor.lua@3"). host is copied (its
 * pointers are not owned); limits may be NULL. Never NULL.
 */
struct ks_lua *ks_lua_new(const char *name, const struct ks_lua_host *host,
			  const struct ks_lua_limits *limits);
/* Cancel every task (their done callbacks run with "cancelled") and close the state. */
void ks_lua_free(struct ks_lua *e);
lua_State *ks_lua_state(struct ks_lua *e);
const char *ks_lua_name(const struct ks_lua *e);
const struct ks_lua_host *ks_lua_host(const struct ks_lua *e);
/* The engine a state (or one of its threads) belongs to. */
struct ks_lua *ks_lua_from(lua_State *L);
/* Bytes the state holds now. */
size_t ks_lua_memory(const struct ks_lua *e);
/* Tasks not finished. */
size_t ks_lua_tasks(const struct ks_lua *e);

/*
 * Compile src (text only: bytecode is refused) as chunk name in the sandbox and push
 * the function. Returns 0, or -EINVAL with *err (free it) set to the message.
 */
int ks_lua_compile(struct ks_lua *e, const char *name, const char *src, size_t len, char **err);

/*
 * Called once when a task ends: ok with its results on ks_lua_task_thread(t)
 * (nres of them), or !ok with the error value on top of that stack and msg its text
 * with a traceback. The task is freed after the callback returns.
 */
typedef void (*ks_lua_done_cb)(struct ks_lua_task *t, bool ok, int nres, const char *msg,
			       void *data);

/*
 * Run the function below nargs arguments on the state's stack (both popped) as a new
 * task. The done callback may run before this returns, when the function finishes
 * without yielding. Returns the task, or NULL when it already finished.
 */
struct ks_lua_task *ks_lua_spawn(struct ks_lua *e, int nargs, ks_lua_done_cb done, void *data);
/* Change the limits (0 fields keep the defaults), each clamped to the host's caps (a
 * warning names what was lowered); they apply to tasks spawned after. */
void ks_lua_set_limits(struct ks_lua *e, const struct ks_lua_limits *limits);
/* The limits in force (after defaults and caps). */
const struct ks_lua_limits *ks_lua_limits_of(const struct ks_lua *e);
/* Where print() goes: stdout (scripts) or the log at info (plugins, the default). */
void ks_lua_set_print_stdout(struct ks_lua *e, bool yes);
/* Cancel every task of e, as ks_lua_task_cancel() does. */
void ks_lua_cancel_all(struct ks_lua *e, const char *why);
/* Cancel: pending ops are cancelled and done runs with !ok and msg "cancelled: why". */
void ks_lua_task_cancel(struct ks_lua_task *t, const char *why);
lua_State *ks_lua_task_thread(struct ks_lua_task *t);
/* Instructions the task has run (counted in steps of the hook's period). */
uint64_t ks_lua_task_instructions(const struct ks_lua_task *t);
/*
 * Charge n instructions of work done in C for Lua code (pattern matching) to the running
 * task, and raise its stop reason (a Lua error) if it is, or now becomes, over a limit:
 * call it often enough from any C loop whose length Lua code chooses. No-op without a
 * running task.
 */
void ks_lua_charge(lua_State *L, uint64_t n);
/*
 * Push a value the host made for a task (an HTTP body, a Kubernetes object) under the
 * state's memory cap: push(L, data) runs protected on the state's main thread, with the
 * cap held, and must push exactly one value; it is then moved to the op's thread. Call
 * from the loop, between the task's runs, before ks_lua_op_resume(). Returns 0, or
 * -ENOMEM (nothing pushed; the garbage is collected) when the value does not fit, or
 * -EINVAL when push raised another error.
 */
int ks_lua_push_capped(struct ks_lua_op *op, lua_CFunction push, void *data);

/*
 * Async operations of bindings. A binding that starts I/O embeds a struct ks_lua_op,
 * calls ks_lua_op_start() and returns its result (a yield). On completion it pushes
 * its results on ks_lua_op_thread(op) and calls ks_lua_op_resume(op, n). If the task
 * is cancelled first, op->cancel runs instead (it must stop the I/O and free op), and
 * resume must not be called.
 */
struct ks_lua_op {
	void (*cancel)(struct ks_lua_op *op);
	struct ks_lua_task *task;
	struct ks_lua_op *next;
};

/* Raise a Lua error unless L is a task's own thread, running (not a plugin's own
 * coroutine, not a module being loaded): call before starting any I/O. */
void ks_lua_check_yieldable(lua_State *L);
/* Yield the running task (L, checked above) on op. Use as `return ks_lua_op_start(L, op);`. */
int ks_lua_op_start(lua_State *L, struct ks_lua_op *op);
/* The task's thread, to push results on. */
lua_State *ks_lua_op_thread(struct ks_lua_op *op);
/* Resume the task with the n values pushed; the op is unlinked (the caller frees it). */
void ks_lua_op_resume(struct ks_lua_op *op, int n);

/*
 * lua_pcall(L, nargs, nres, 0) for the host calling a plugin's code outside its tasks
 * (the __tostring of an error a reconcile returned): under the memory cap and a budget of
 * its own (a million instructions, a second, what the loop's turn has left of the slice).
 * Returns lua_pcall's code; a limit is an error like any other (the call is stopped).
 * Only between runs (no task running).
 */
int ks_lua_pcall_limited(struct ks_lua *e, lua_State *L, int nargs, int nres);
/* The task running now on e, or NULL. */
struct ks_lua_task *ks_lua_running(struct ks_lua *e);
/* Monotonic deadline (seconds, ks_now_ns() based) of the running task; 0 if none. */
double ks_lua_deadline(lua_State *L);
