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
#include "plugin/plugin.h"
#include "metrics.h"
#include "status.h"
#include "test.h"

static uv_loop_t loop;
static struct ks_http *http;
static struct ks_metrics *metrics;

struct result {
	bool done, ok;
	uint64_t instructions; /* the task's count when it ended */
	char out[2048];
};

static void done(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct result *r = data;
	lua_State *co = ks_lua_task_thread(t);

	r->done = true;
	r->ok = ok;
	r->instructions = ks_lua_task_instructions(t);
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
	static const struct {
		const char *src, *want;
	} bad[] = {
		{ "return io.open('/etc/passwd')", "attempt to index global 'io' (a nil value)" },
		{ "return os.execute('true')", "attempt to call field 'execute' (a nil value)" },
		{ "return os.exit(3)", "attempt to call field 'exit' (a nil value)" },
		{ "return require('ffi')", "module 'ffi' not found" },
		{ "return debug.getinfo(1)", "attempt to index global 'debug' (a nil value)" },
		{ "return jit.off()", "attempt to index global 'jit' (a nil value)" },
		{ "return dofile('/etc/passwd')", "attempt to call global 'dofile' (a nil value)" },
		{ "return loadfile('/etc/passwd')",
		  "attempt to call global 'loadfile' (a nil value)" },
		{ "return package.loadlib('x', 'y')",
		  "attempt to index global 'package' (a nil value)" },
		{ "x = 1", "assignment to global 'x': plugins keep state in locals" },
		{ "string.upper = nil", "string is read-only (assigning 'upper')" },
		{ "getmetatable('').__index.upper = nil", "attempt to index a boolean value" },
		{ "return collectgarbage('count')",
		  "attempt to call global 'collectgarbage' (a nil value)" },
		{ "return newproxy(true)", "attempt to call global 'newproxy' (a nil value)" },
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(bad); i++) {
		struct result r = run(bad[i].src);
		if (r.ok || !strstr(r.out, bad[i].want))
			FAIL_("'%s': %s, not \"%s\"", bad[i].src, r.ok ? "allowed" : r.out,
			      bad[i].want);
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
	ASSERT_STR(r.out, "nil attempt to load chunk with wrong mode");
	ASSERT_EQ(ks_lua_compile(e, "=x", "\033LJ\002", 4, &err), -EINVAL);
	ASSERT_HAS(err, "x: precompiled bytecode is refused; load the source");
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

/* The budget's own error, and the task stopped within its budget plus what one hook
 * period and one charge of the pattern matcher may add (2 x 1000 instructions). */
#define BUDGET 1000000
#define BUDGET_MSG "instruction budget exceeded: more than 1 million instructions"
#define ASSERT_STOPPED_BY_BUDGET(r)                        \
	do {                                               \
		ASSERT(!(r).ok);                           \
		ASSERT_HAS((r).out, BUDGET_MSG);           \
		ASSERT((r).instructions <= BUDGET + 2000); \
	} while (0)

static struct result run_budget(const char *src)
{
	struct ks_lua_limits lim = { .instructions = BUDGET, .seconds = 120 };

	return run_with(src, &lim);
}

TEST(nested_pcall_xpcall_and_coroutines_cannot_catch_the_budget)
{
	static const char *const hostile[] = {
		/* five levels of pcall, each restarting the level below forever */
		"local function nest(n)\n"
		"  if n == 0 then while true do end end\n"
		"  while true do pcall(nest, n - 1) end\n"
		"end\n"
		"nest(5)",
		/* xpcall whose handler loops, then one that swallows and returns */
		"while true do xpcall(function() while true do end end,\n"
		"  function() while true do end end) end",
		"while true do xpcall(function() while true do end end,\n"
		"  function() return 'fine' end) end",
		/* the caught error replaced by the plugin's own */
		"local ok = pcall(function() while true do end end)\n"
		"error('the plugin says: all is well')",
		/* coroutine.wrap and coroutine.resume, under pcall */
		"while true do pcall(coroutine.wrap(function() while true do end end)) end",
		"while true do\n"
		"  coroutine.resume(coroutine.create(function() while true do end end))\n"
		"end",
		/* pcall inside a coroutine inside pcall */
		"while true do pcall(function()\n"
		"  local co = coroutine.create(function()\n"
		"    while true do pcall(function() while true do end end) end\n"
		"  end)\n"
		"  while true do coroutine.resume(co) end\n"
		"end) end",
		/* an __index that loops, read under pcall forever */
		"local t = setmetatable({}, { __index = function(t, k) while true do end end })\n"
		"while true do pcall(function() return t.x end) end",
		/* deep recursion, restarted under pcall forever */
		"local function f(n) return f(n + 1) + 1 end\n"
		"while true do pcall(f, 1) end",
	};
	size_t i;

	struct ks_metric_family *f;
	double before;

	f = ks_metrics_counter(metrics, "kupenstack_plugin_limit_stops_total", "x",
			       KS_LABELS("plugin", "limit"));
	before = ks_metric_value(ks_metric_child(f, KS_LABELS("test", "instructions")));
	for (i = 0; i < KS_ARRAY_SIZE(hostile); i++) {
		struct result r = run_budget(hostile[i]);

		if (r.ok || !strstr(r.out, BUDGET_MSG) || r.instructions > BUDGET + 2000)
			FAIL_("case %zu: ok=%d instructions=%llu: %s", i, r.ok,
			      (unsigned long long)r.instructions, r.out);
	}
	ASSERT_EQ(ks_metric_value(ks_metric_child(f, KS_LABELS("test", "instructions"))) - before,
		  KS_ARRAY_SIZE(hostile));
}

TEST(pattern_bombs_are_stopped_by_the_budget)
{
	static const char *const bombs[] = {
		"return string.rep('a', 26):find(string.rep('a*', 26) .. 'b')",
		"return string.match(string.rep('a', 26), string.rep('a*', 26) .. 'b')",
		"return (string.gsub(string.rep('a', 26), string.rep('a-', 26) .. 'b', 'x'))",
		"for m in string.gmatch(string.rep('a', 26), string.rep('a?', 26) .. 'b') do end",
		"return string.rep('x', 1e5):find('[' .. string.rep('a', 1e5) .. ']')",
		"while true do pcall(string.find, string.rep('a', 26), string.rep('a*', 26) .. "
		"'b') end",
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(bombs); i++) {
		struct result r = run_budget(bombs[i]);

		if (r.ok || !strstr(r.out, BUDGET_MSG) || r.instructions > BUDGET + 2000)
			FAIL_("case %zu: ok=%d instructions=%llu: %s", i, r.ok,
			      (unsigned long long)r.instructions, r.out);
	}
}

/* What LuaJIT's own functions give for the same script (test_pattern.c compares
 * the two on random patterns). */
/* The table library's loops in C are charged before they run, so the count may pass the
 * budget by what one call would have cost (here at most 2e5 log 2e5 < 4e6). */
TEST(table_loops_in_c_are_charged)
{
	static const char *const loops[] = {
		"local t = {} for i = 1, 1e5 do t[i] = i end\n"
		"while true do table.insert(t, 1, 0) table.remove(t, 1) end",
		"local t = {} for i = 1, 2e5 do t[i] = -i end\n"
		"while true do pcall(table.sort, t) end",
		"local t = {} for i = 1, 1e5 do t[i] = 'x' end\n"
		"while true do pcall(table.concat, t) end",
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(loops); i++) {
		struct result r = run_budget(loops[i]);

		if (r.ok || !strstr(r.out, BUDGET_MSG) || r.instructions > BUDGET + 4000000)
			FAIL_("case %zu: ok=%d instructions=%llu: %s", i, r.ok,
			      (unsigned long long)r.instructions, r.out);
	}
	ASSERT_STR(run("local t = { 3, 1, 2 }\n"
		       "table.sort(t) table.insert(t, 1, 0) table.insert(t, 9)\n"
		       "assert(table.remove(t, 1) == 0 and table.remove(t) == 9)\n"
		       "return table.concat(t, ',')")
			   .out,
		   "1,2,3");
}

TEST(patterns_still_work)
{
	struct result r =
		run("local s = ''\n"
		    "local function add(...) for i = 1, select('#', ...) do s = s .. "
		    "tostring((select(i, ...))) .. ';' end end\n"
		    "add(('hello world'):find('o w'))\n"
		    "add(('hello world'):find('(o)%s(w)'))\n"
		    "add(('a.b'):find('.', 1, true))\n"
		    "add(('key = value'):match('^(%w+)%s*=%s*(%w+)$'))\n"
		    "add(('  trim  '):match('^%s*(.-)%s*$'))\n"
		    "add(('THE (quick) fox'):find('%f[%a]%a+', 5))\n"
		    "add(('f(a(b)c)d'):match('%b()'))\n"
		    "add(('abcabc'):match('(a)(b)c%1%2'))\n"
		    "add(string.gsub('hello world', '(%w+)', '<%1>'))\n"
		    "add(string.gsub('abc', '%w', { a = 'A', b = false }))\n"
		    "add(string.gsub('abc', '', '-'))\n"
		    "add(string.gsub('x = 1, y = 2', '(%w+) = (%w+)', function(k, v) return v .. k "
		    "end))\n"
		    "for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do add(k, v) end\n"
		    "add(('[x]'):match('^%[(.*)%]$'), ('2026-12-06'):match('(%d+)-(%d+)-(%d+)'))\n"
		    "add(('x'):find('()'), ('abc'):find('b', -1), ('abc'):find('', 10))\n"
		    "add(pcall(string.find, 'a', '%'))\n"
		    "add(pcall(string.find, 'a', '[a'))\n"
		    "return s\n");

	ASSERT(r.ok);
	ASSERT_STR(
		r.out,
		"5;7;5;7;o;w;2;2;key;value;trim;6;10;(a(b)c);a;b;<hello> "
		"<world>;2;Abc;3;-a-b-c-;4;1x, 2y;2;a;1;b;2;x;2026;12;06;1;nil;4;3;false;malformed "
		"pattern (ends with '%');false;malformed pattern (missing ']');");
}

TEST(a_huge_string_rep_is_stopped_by_the_memory_cap)
{
	struct ks_lua_limits lim = { .memory = 8u << 20 };
	struct result r = run_with("return #string.rep('x', 1e9)", &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "memory limit exceeded");
	r = run_with("local ok, err = pcall(string.rep, 'x', 1e9)\n"
		     "return tostring(ok) .. ' ' .. tostring(err)",
		     &lim);
	ASSERT(r.ok);
	ASSERT_STR(r.out, "false not enough memory");
}

TEST(a_table_reached_through_many_paths_does_not_become_gigabytes_of_json)
{
	struct ks_lua_limits lim = { .memory = 8u << 20 };
	struct result r = run_with("local t = { string.rep('x', 1000) }\n"
				   "for i = 1, 30 do t = { t, t } end\n"
				   "return require('ks.core.json').encode(t)",
				   &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "would take more host memory than the plugin's memory limit");
}

TEST(a_gc_metamethod_on_a_table_never_runs_plugin_code)
{
	/* Lua 5.1 calls __gc for userdata only, and plugins get no userdata with a
	 * metatable of their own (no newproxy): a looping __gc is inert. */
	struct ks_lua_limits lim = { .instructions = BUDGET, .memory = 8u << 20 };
	struct result r =
		run_with("for i = 1, 1000 do\n"
			 "  setmetatable({}, { __gc = function() while true do end end })\n"
			 "  local garbage = string.rep('x', 10000) .. i\n"
			 "end\n"
			 "return 'done'",
			 &lim);

	ASSERT(r.ok);
	ASSERT_STR(r.out, "done");
}

TEST(deep_recursion_is_stopped_by_the_stack_limit)
{
	struct result r = run_budget("local function f(n) return f(n + 1) + 1 end\n"
				     "return f(1)");

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "stack overflow");
}

TEST(wall_time_is_checked_inside_lua_resume)
{
	/* A budget far past the deadline: only the clock, read by the count hook while the
	 * loop is inside lua_resume (its timer cannot fire), can stop this. */
	struct ks_lua_limits lim = { .instructions = 1e12, .seconds = 0.3 };
	struct result r =
		run_with("while true do pcall(function() while true do end end) end", &lim);

	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "wall time limit exceeded: 0.3 s");
	r = run_with("return string.rep('a', 28):find(string.rep('a*', 28) .. 'b')", &lim);
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "wall time limit exceeded: 0.3 s");
}

TEST(one_run_may_not_hold_the_loop_past_its_slice)
{
	struct ks_lua_limits lim = { .instructions = 1e12, .seconds = 100, .slice = 0.2 };
	struct result r = run_with("require('ks.core.time').sleep(0.3)\n"
				   "while true do pcall(function() while true do end end) end",
				   &lim);

	ASSERT(!r.ok);
	/* the sleep (0.3 s, longer than the slice) was fine: the slice is per run */
	ASSERT_HAS(r.out, "Lua held the host's loop for 0.2 s without letting it turn");
}

TEST(runs_in_one_turn_of_the_loop_share_the_slice)
{
	struct ks_lua_limits lim = { .instructions = 1e12, .seconds = 100, .slice = 0.6 };
	struct ks_lua_host h = host();
	struct ks_lua *e = ks_lua_new("test", &h, &lim);
	const char *src = "local now = require('ks.core.time').monotonic\n"
			  "local t = now()\n"
			  "while now() - t < 0.4 do end\n"
			  "return 'done'";
	struct result a = { 0 }, b = { 0 }, c = { 0 };
	char *err = NULL;
	lua_State *L = ks_lua_state(e);

	ASSERT_EQ(ks_lua_compile(e, "=t", src, strlen(src), &err), 0);
	uv_update_time(&loop); /* a new turn */
	lua_pushvalue(L, -1);
	ks_lua_spawn(e, 0, done, &a);
	lua_pushvalue(L, -1);
	ks_lua_spawn(e, 0, done, &b); /* same turn: 0.2 s of the slice left */
	ASSERT_STR(a.out, "done");
	ASSERT(!b.ok);
	ASSERT_HAS(b.out, "Lua held the host's loop for 0.6 s without letting it turn");
	uv_sleep(2);
	uv_update_time(&loop); /* the loop turned: a whole slice again */
	ks_lua_spawn(e, 0, done, &c);
	ASSERT(c.ok);
	ks_lua_free(e);
}

struct outcome {
	bool done;
	char error[512];
	double requeue_after;
};

static void outcome_done(const struct ks_outcome *o, void *data)
{
	struct outcome *out = data;

	out->done = true;
	out->requeue_after = o->requeue_after;
	snprintf(out->error, sizeof(out->error), "%s", o->error ? o->error : "");
}

/* Reconcile one object with a plugin whose reconcile body is body. */
static struct outcome reconcile_with(const char *body)
{
	char src[1024];
	struct ks_lua_host h = host();
	struct outcome out = { 0 };
	struct ks_plugin *p;
	char *err = NULL;
	cJSON *obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"n\",\"name\":\"o\"}}");

	snprintf(src, sizeof(src),
		 "return { api = 1, group = 'g', version = 'v1', kind = 'K',\n"
		 "  reconcile = function(obj, ctx)\n%s\n  end }",
		 body);
	p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);
	if (!p) {
		snprintf(out.error, sizeof(out.error), "load: %s", err);
		free(err);
	} else {
		ks_plugin_run(p, NULL, obj, "n/o", false, outcome_done, &out);
		while (!out.done && uv_run(&loop, UV_RUN_ONCE))
			;
		ks_plugin_free(p, "test");
	}
	cJSON_Delete(obj);
	return out;
}

TEST(the_host_reads_a_plugins_result_without_running_its_code_unbounded)
{
	/* a result whose __index loops: the host reads its fields raw */
	struct outcome o = reconcile_with(
		"return setmetatable({}, { __index = function() while true do end end })");

	ASSERT(o.done);
	ASSERT_STR(o.error, "");
	/* an error whose __tostring loops: called with a budget of its own */
	o = reconcile_with("return nil, setmetatable({ message = 'mine' },\n"
			   "  { __tostring = function() while true do end end })");
	ASSERT(o.done);
	ASSERT_STR(o.error, "mine");
	/* a well-behaved __tostring still gives the message */
	o = reconcile_with(
		"return nil, setmetatable({}, { __tostring = function() return 'told' end })");
	ASSERT_STR(o.error, "told");
}

TEST(load_time_code_runs_under_the_same_limits)
{
	static const char *const hostile[] = {
		"while true do end\nreturn {}",
		"while true do pcall(function() while true do end end) end\nreturn {}",
		"string.rep('a', 26):find(string.rep('a*', 26) .. 'b')\nreturn {}",
	};
	struct ks_lua_host h = host();
	size_t i;

	h.caps.instructions = BUDGET;
	for (i = 0; i < KS_ARRAY_SIZE(hostile); i++) {
		char *err = NULL;
		struct ks_plugin *p =
			ks_plugin_load(&h, "p.lua", hostile[i], strlen(hostile[i]), &err);

		ks_plugin_free(p, "test");
		if (p || !err || !strstr(err, BUDGET_MSG) || !strstr(err, "plugin p.lua"))
			FAIL_("case %zu: %s", i, err ? err : "(loaded)");
		free(err);
	}
}

TEST(the_operator_caps_what_a_plugin_declares)
{
	const char *src = "return { api = 1, group = 'g', version = 'v1', kind = 'K',\n"
			  "  limits = { memory_mb = 4096, instructions = 1e12, seconds = 86400 },\n"
			  "  reconcile = function() end }";
	struct ks_lua_host h = host();
	const struct ks_lua_limits *got;
	struct ks_plugin *p;
	char *err = NULL;

	h.caps = (struct ks_lua_limits){
		.memory = 32u << 20, .instructions = 1000000000, .seconds = 600, .slice = 2
	};
	p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);
	ASSERT(p != NULL);
	got = ks_lua_limits_of(p->lua);
	ASSERT_EQ(got->memory, 32u << 20);
	ASSERT_EQ(got->instructions, 1000000000);
	ASSERT(got->seconds == 600 && got->slice == 2);
	ks_plugin_free(p, "test");
}

/* A one-shot HTTP server on loopback answering every request with a body of `size`
 * bytes of 'x'. */
struct big_server {
	uv_tcp_t tcp;
	size_t size;
	int port;
};

static void big_closed(uv_handle_t *h)
{
	free(h);
}

static void big_written(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	uv_close((uv_handle_t *)w->handle, big_closed);
	free(w);
}

static void big_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
	static char scratch[4096];

	(void)h;
	(void)n;
	*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void big_read(uv_stream_t *c, ssize_t n, const uv_buf_t *buf)
{
	struct big_server *s = c->data;
	uv_write_t *w;
	char *resp;
	int hl;

	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)c, big_closed);
		return;
	}
	if (n == 0 || uv_is_closing((uv_handle_t *)c))
		return;
	uv_read_stop(c);
	resp = malloc(s->size + 128);
	hl = snprintf(resp, 128,
		      "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		      s->size);
	memset(resp + hl, 'x', s->size);
	w = calloc(1, sizeof(*w));
	w->data = resp;
	uv_buf_t out = uv_buf_init(resp, (unsigned)(hl + s->size));
	uv_write(w, c, &out, 1, big_written);
}

static void big_accept(uv_stream_t *server, int status)
{
	uv_tcp_t *c = calloc(1, sizeof(*c));

	(void)status;
	uv_tcp_init(&loop, c);
	c->data = server->data;
	uv_accept(server, (uv_stream_t *)c);
	uv_read_start((uv_stream_t *)c, big_alloc, big_read);
}

static void big_start(struct big_server *s, size_t size)
{
	struct sockaddr_in addr;
	struct sockaddr_storage got;
	int len = sizeof(got);

	s->size = size;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	uv_tcp_init(&loop, &s->tcp);
	s->tcp.data = s;
	uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0);
	uv_listen((uv_stream_t *)&s->tcp, 8, big_accept);
	uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&got, &len);
	s->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

TEST(an_http_body_past_the_memory_cap_fails_that_call_not_the_host)
{
	struct ks_lua_limits lim = { .memory = 8u << 20 };
	static struct big_server s; /* closed from the loop, after this returns */
	struct result r;
	char src[512];

	big_start(&s, 16u << 20);
	snprintf(src, sizeof(src),
		 "local http = require 'ks.core.http'\n"
		 "local res, err = http.request{ url = 'http://127.0.0.1:%d/big' }\n"
		 "assert(res == nil, 'a 16 MiB body was handed to an 8 MiB plugin')\n"
		 "return err.reason .. ': ' .. err.message",
		 s.port);
	r = run_with(src, &lim);
	ASSERT(r.ok);
	ASSERT_HAS(r.out, "MemoryLimit: GET http://127.0.0.1:");
	ASSERT_HAS(r.out, "the response body is larger than the plugin's memory limit "
			  "(8388608 bytes); it was not read");
	/* A body that fits is handed over; building past the cap from it is stopped. */
	s.size = 1u << 20;
	snprintf(src, sizeof(src),
		 "local http = require 'ks.core.http'\n"
		 "local res = assert(http.request{ url = 'http://127.0.0.1:%d/big' })\n"
		 "local t = {}\n"
		 "for i = 1, 64 do t[i] = res.body .. i end\n",
		 s.port);
	r = run_with(src, &lim);
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "memory limit exceeded");
	uv_close((uv_handle_t *)&s.tcp, NULL);
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
	RUN(nested_pcall_xpcall_and_coroutines_cannot_catch_the_budget);
	RUN(pattern_bombs_are_stopped_by_the_budget);
	RUN(table_loops_in_c_are_charged);
	RUN(patterns_still_work);
	RUN(a_huge_string_rep_is_stopped_by_the_memory_cap);
	RUN(a_table_reached_through_many_paths_does_not_become_gigabytes_of_json);
	RUN(a_gc_metamethod_on_a_table_never_runs_plugin_code);
	RUN(deep_recursion_is_stopped_by_the_stack_limit);
	RUN(wall_time_is_checked_inside_lua_resume);
	RUN(one_run_may_not_hold_the_loop_past_its_slice);
	RUN(runs_in_one_turn_of_the_loop_share_the_slice);
	RUN(the_host_reads_a_plugins_result_without_running_its_code_unbounded);
	RUN(load_time_code_runs_under_the_same_limits);
	RUN(the_operator_caps_what_a_plugin_declares);
	RUN(an_http_body_past_the_memory_cap_fails_that_call_not_the_host);
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
