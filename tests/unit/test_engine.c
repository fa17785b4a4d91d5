/*
 * test_engine.c: the Lua engine without servers: the sandbox, the limits, tasks that
 * yield on the loop, cancellation, JSON conversion, and plugin table checks.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "ks.h"
#include "lua/engine.h"
#include "lua/plugin.h"
#include "metrics.h"
#include "test.h"

static uv_loop_t loop;
static struct ks_http *http;
static struct ks_metrics *metrics;

struct result {
	bool done, ok;
	char out[2048];
};

static void done(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct result *r = data;
	lua_State *co = ks_lua_task_thread(t);

	r->done = true;
	r->ok = ok;
	if (!ok)
		snprintf(r->out, sizeof(r->out), "%s", msg);
	else if (nres >= 1 && lua_isstring(co, 1))
		snprintf(r->out, sizeof(r->out), "%s", lua_tostring(co, 1));
	else
		r->out[0] = '\0';
}

static struct ks_lua_host host(void)
{
	return (struct ks_lua_host){
		.loop = &loop, .http = http, .metrics = metrics, .stdlib_dir = "stdlib"
	};
}

/* Run src as a task to its end; the state is freed after. */
static struct result run_with(const char *src, const struct ks_lua_limits *lim)
{
	struct ks_lua_host h = host();
	struct ks_lua *e = ks_lua_new("test", &h, lim);
	struct result r = { 0 };
	char *err = NULL;

	if (ks_lua_compile(e, "=test", src, strlen(src), &err) != 0) {
		snprintf(r.out, sizeof(r.out), "compile: %s", err);
		free(err);
		r.done = true;
	} else {
		ks_lua_spawn(e, 0, done, &r);
		while (!r.done && uv_run(&loop, UV_RUN_ONCE))
			;
	}
	ks_lua_free(e);
	return r;
}

static struct result run(const char *src)
{
	return run_with(src, NULL);
}

#define ASSERT_HAS(s, needle)                                                   \
	do {                                                                    \
		if (!strstr((s), (needle)))                                     \
			FAIL_("\"%s\" does not contain \"%s\"", (s), (needle)); \
	} while (0)

TEST(sandbox_offers_no_io_os_ffi_debug_or_globals)
{
	static const char *const bad[] = {
		"return io.open('/etc/passwd')",
		"return os.execute('true')",
		"return os.exit(3)",
		"return require('ffi')",
		"return debug.getinfo(1)",
		"return jit.off()",
		"return dofile('/etc/passwd')",
		"return loadfile('/etc/passwd')",
		"return package.loadlib('x', 'y')",
		"x = 1",
		"string.upper = nil",
		"getmetatable('').__index.upper = nil",
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(bad); i++) {
		struct result r = run(bad[i]);
		if (r.ok)
			FAIL_("'%s' was allowed", bad[i]);
	}
}

TEST(bytecode_is_refused_in_load_and_compile)
{
	struct result r = run("local f = function() return 1 end\n"
			      "local ok, err = pcall(load, string.dump(f))\n"
			      "local g, e2 = load(string.dump(f))\n"
			      "return tostring(g) .. ' ' .. tostring(e2)");
	struct ks_lua_host h = host();
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
	char *err = NULL;

	ASSERT(r.ok);
	ASSERT_HAS(r.out, "nil");
	ASSERT_EQ(ks_lua_compile(e, "=x", "\033LJ\002", 4, &err), -EINVAL);
	ASSERT_HAS(err, "bytecode");
	free(err);
	ks_lua_free(e);
}

TEST(allowed_library_works)
{
	struct result r = run("local t = {}\n"
			      "for i = 1, 3 do t[#t + 1] = string.format('%d', i * 2) end\n"
			      "return table.concat(t, ',') .. ' ' .. math.floor(2.5) .. ' ' ..\n"
			      "  ('ab'):upper() .. ' ' .. tostring(type(os.time()))");
	ASSERT(r.ok);
	ASSERT_STR(r.out, "2,4,6 2 AB number");
}

TEST(instruction_budget_stops_an_endless_loop)
{
	struct ks_lua_limits lim = { .instructions = 1000000 };
	struct result r = run_with("while true do end", &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "instruction budget exceeded");
}

TEST(memory_cap_stops_a_hog_and_the_state_lives_on)
{
	struct ks_lua_limits lim = { .memory = 8u << 20 };
	struct result r = run_with("local t = {}\n"
				   "for i = 1, 1e7 do t[i] = string.rep('x', 1000) .. i end",
				   &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "memory limit exceeded");
}

TEST(wall_time_limit_cancels_a_sleeper)
{
	struct ks_lua_limits lim = { .seconds = 0.2 };
	uint64_t t0 = ks_now_ns();
	struct result r = run_with("require('ks.core.time').sleep(30)", &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "wall time limit exceeded");
	ASSERT((ks_now_ns() - t0) < 5000000000ull);
}

TEST(tasks_yield_on_the_loop_and_interleave)
{
	struct ks_lua_host h = host();
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
	const char *src = "local time = require 'ks.core.time'\n"
			  "local name, delay = ...\n"
			  "time.sleep(delay)\n"
			  "return name";
	struct result a = { 0 }, b = { 0 };
	char *err = NULL;
	lua_State *L = ks_lua_state(e);

	ASSERT_EQ(ks_lua_compile(e, "=t", src, strlen(src), &err), 0);
	lua_pushvalue(L, -1);
	lua_pushstring(L, "slow");
	lua_pushnumber(L, 0.2);
	ASSERT(ks_lua_spawn(e, 2, done, &a) != NULL);
	lua_pushstring(L, "fast");
	lua_pushnumber(L, 0.01);
	ASSERT(ks_lua_spawn(e, 2, done, &b) != NULL);
	ASSERT_EQ(ks_lua_tasks(e), 2);
	while (!b.done && uv_run(&loop, UV_RUN_ONCE))
		;
	ASSERT(!a.done); /* the slow one still sleeps: the fast one overtook it */
	while (!a.done && uv_run(&loop, UV_RUN_ONCE))
		;
	ASSERT_STR(a.out, "slow");
	ASSERT_STR(b.out, "fast");
	ASSERT_EQ(ks_lua_tasks(e), 0);
	ks_lua_free(e);
}

TEST(cancel_stops_pending_io_and_reports)
{
	struct ks_lua_host h = host();
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
	const char *src = "require('ks.core.time').sleep(10) return 'woke'";
	struct result r = { 0 };
	struct ks_lua_task *t;
	char *err = NULL;

	ASSERT_EQ(ks_lua_compile(e, "=t", src, strlen(src), &err), 0);
	t = ks_lua_spawn(e, 0, done, &r);
	ASSERT(t != NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	ks_lua_task_cancel(t, "plugin replaced");
	ASSERT(r.done && !r.ok);
	ASSERT_HAS(r.out, "cancelled: plugin replaced");
	ks_lua_free(e);
	uv_run(&loop, UV_RUN_DEFAULT); /* the sleep's timer closes; nothing resumes */
}

TEST(http_transport_errors_are_values)
{
	struct result r = run("local http = require 'ks.core.http'\n"
			      "local res, err = http.request{ url = 'http://127.0.0.1:1/' }\n"
			      "return tostring(res) .. ' ' .. err.reason .. ' ' .. err.code");
	ASSERT(r.ok);
	ASSERT_STR(r.out, "nil ConnectionRefused 0");
	ASSERT_EQ(ks_metric_value(ks_metric_child(
			  ks_metrics_find(metrics, "kupenstack_http_client_requests_total"),
			  KS_LABELS("GET", "0"))),
		  1);
	r = run("return require('ks.core.http').request{ url = 'file:///etc/passwd' }");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "http:// or https://");
}

TEST(json_round_trips_arrays_objects_and_null)
{
	struct result r =
		run("local json = require 'ks.core.json'\n"
		    "local v = json.decode('{\"a\":[],\"b\":{},\"c\":null,\"d\":[1,\"x\"]}')\n"
		    "assert(json.is_array(v.a) and not json.is_array(v.b))\n"
		    "assert(v.c == json.null)\n"
		    "local back = json.decode(json.encode(v))\n"
		    "return json.encode(back.a) .. json.encode(back.b) .. json.encode(back.d)\n"
		    "  .. json.encode(json.array())");
	ASSERT(r.ok);
	ASSERT_STR(r.out, "[]{}[1,\"x\"][]");
	r = run("return require('ks.core.json').encode({ f = print })");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "no JSON form");
}

TEST(yield_from_a_plugin_coroutine_is_an_error_not_a_hang)
{
	struct result r = run("local co = coroutine.wrap(function()\n"
			      "  require('ks.core.time').sleep(0.01)\n"
			      "end)\n"
			      "co()");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "not from inside a coroutine of your own");
}

static char *plugin_error(const char *src)
{
	struct ks_lua_host h = host();
	char *err = NULL;
	struct ks_plugin *p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);

	ks_plugin_free(p, "test");
	return err;
}

TEST(malformed_plugin_tables_are_refused_naming_the_field)
{
	static const struct {
		const char *src, *want;
	} cases[] = {
		{ "return 5", "must return the plugin table" },
		{ "return { api = 1, group = 'g', version = 'v1', reconcile = function() end }",
		  "field 'kind'" },
		{ "return { api = 2, group = 'g', version = 'v1', kind = 'K', reconcile = "
		  "function() end }",
		  "field 'api'" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', reconcile = 5 }",
		  "field 'reconcile'" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', finalizer = 'f', "
		  "reconcile = function() end }",
		  "field 'finalize'" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', reconcile = "
		  "function() end, watches = { { group = '', version = 'v1', kind = 'X' } } }",
		  "watches[1].map" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', reconcile = "
		  "function() end, concurrency = 0 }",
		  "field 'concurrency'" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', reconcile = "
		  "function() end, skip_names = 'kube-*' }",
		  "field 'skip_names'" },
		{ "return { api = 1, group = 'g', version = 'v1', kind = 'K', reconcile = "
		  "function() end, skip_names = { 'a,b' } }",
		  "field 'skip_names' entry 1" },
		{ "syntax error here", "p.lua" },
		{ "require('ks.core.time').sleep(1) return {}", "must not wait for I/O" },
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		char *err = plugin_error(cases[i].src);
		bool ok = err && strstr(err, cases[i].want) && strstr(err, "p.lua");
		if (!ok) {
			printf("  case %zu: %s\n", i, err ? err : "(accepted)");
			free(err);
			FAIL_("case %zu not refused with '%s'", i, cases[i].want);
		}
		free(err);
	}
	ASSERT(plugin_error("return { api = 1, group = 'g', version = 'v1', kind = 'K', "
			    "reconcile = function() end }") == NULL);
	ASSERT(plugin_error("return { api = 1, group = 'g', version = 'v1', kind = 'K', "
			    "reconcile = function() end, skip_names = { 'kube-*', 'x' }, "
			    "selector = { l = '!false' } }") == NULL);
}

int main(void)
{
	uv_loop_init(&loop);
	http = ks_http_new(&loop);
	metrics = ks_metrics_new();
	RUN(sandbox_offers_no_io_os_ffi_debug_or_globals);
	RUN(bytecode_is_refused_in_load_and_compile);
	RUN(allowed_library_works);
	RUN(instruction_budget_stops_an_endless_loop);
	RUN(memory_cap_stops_a_hog_and_the_state_lives_on);
	RUN(wall_time_limit_cancels_a_sleeper);
	RUN(tasks_yield_on_the_loop_and_interleave);
	RUN(cancel_stops_pending_io_and_reports);
	RUN(http_transport_errors_are_values);
	RUN(json_round_trips_arrays_objects_and_null);
	RUN(yield_from_a_plugin_coroutine_is_an_error_not_a_hang);
	RUN(malformed_plugin_tables_are_refused_naming_the_field);
	ks_http_free(http);
	ks_metrics_free(metrics);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_MAIN();
}
