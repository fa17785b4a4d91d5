/*
 * bench_plugin.c: what the Lua plugin host costs, offline (no cluster), next to the aims
 * of issue 5.
 *
 * Overhead per reconcile of an empty plugin (its reconcile returns {}): ks_plugin_run(),
 * the path ks_plugin_reconcile() in host/plugin/run.c takes, without a controller (the
 * object pushed as a Lua table, ctx built with the event closure over the object's JSON
 * text, the task spawned, its result turned into a struct ks_outcome, the task's timer
 * closed by the loop), against a C reconcile callback called directly with the same
 * cJSON object and reporting the same outcome. What both share (the controller's queue,
 * parsing the object out of the cache, the status write) is left out of both.
 *
 * Memory per plugin state: ks_lua_memory() right after ks_plugin_load() of the empty
 * plugin and of plugins/network.lua with the stdlib it requires (from stdlib/), then
 * after a full GC; and the C heap (malloc, Lua's allocations included) that 20 loaded
 * states of each take, per state. Run from the top of the tree (bench/run does).
 * `bench_plugin --profile` runs the plugin path alone, for perf.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <uv.h>

#include "controller.h"
#include "http.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "lua/engine.h"
#include "plugin/plugin.h"

enum { N = 200000, WARMUP = 5000, CLOSE_BATCH = 64, STATES = 20 };

#define AIM_OVERHEAD_US 20.0
#define AIM_STATE_KIB 200.0

static const char empty_src[] = "return {\n"
				"  api = 1, group = \"test.kupenstack.io\", version = \"v1\",\n"
				"  kind = \"Widget\",\n"
				"  reconcile = function(obj, ctx) return {} end,\n"
				"}\n";

/* A Widget as the cache holds it (managedFields stripped), with a status. */
static const char widget_json[] =
	"{\"apiVersion\":\"test.kupenstack.io/v1\",\"kind\":\"Widget\",\"metadata\":{"
	"\"name\":\"widget-00042\",\"namespace\":\"bench-1\",\"uid\":"
	"\"6f1c2a3e-0000-4000-8000-000000000042\",\"resourceVersion\":\"12345\","
	"\"generation\":2,\"creationTimestamp\":\"2026-11-24T12:00:00Z\",\"labels\":{"
	"\"app\":\"bench\",\"tier\":\"t2\"},\"annotations\":{\"kupenstack.io/note\":\"x\"},"
	"\"finalizers\":[\"test.kupenstack.io/bench\"]},"
	"\"spec\":{\"size\":42,\"color\":\"blue\"},\"status\":{\"phase\":\"Ready\","
	"\"observedGeneration\":2,\"conditions\":[{\"type\":\"Available\",\"status\":\"True\","
	"\"reason\":\"Success\",\"message\":\"the resource is ready\",\"lastTransitionTime\":"
	"\"2026-11-24T12:00:01Z\",\"observedGeneration\":2},{\"type\":\"Progressing\","
	"\"status\":\"False\",\"reason\":\"Success\",\"message\":\"nothing to do\","
	"\"lastTransitionTime\":\"2026-11-24T12:00:01Z\",\"observedGeneration\":2}]}}";

static long outcomes, failures;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- the plugin path ------------------------------------------------------------------ */

/* Where ks_reconcile_done(r, o) would take the outcome. */
static __attribute__((noinline)) void outcome_done(const struct ks_outcome *o, void *data)
{
	if (o->error)
		failures++;
	else
		outcomes++;
}

/* ---- the direct C callback ------------------------------------------------------------ */

/* An empty reconcile in C: look at the object, report an empty outcome. */
static __attribute__((noinline)) void c_reconcile(const cJSON *obj, const char *key,
						  struct ks_outcome *o)
{
	memset(o, 0, sizeof(*o));
	if (ks_json_int(obj, "metadata.generation", 0) <= 0 || !key[0])
		o->error = "no generation";
	outcome_done(o, NULL);
}

static void (*volatile c_callback)(const cJSON *, const char *, struct ks_outcome *) = c_reconcile;

/* ---- timing ----------------------------------------------------------------------------- */

struct timing {
	double mean_us, p50_us, p99_us;
};

/* This thread's CPU time: the machine is shared (tests, builds, clusters), and time spent
 * preempted is not the host's cost. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void call(uv_loop_t *loop, struct ks_plugin *p, const cJSON *obj, int i)
{
	struct ks_outcome o;

	if (p) /* what ks_plugin_reconcile() does for the controller */
		ks_plugin_run(p, NULL, obj, "bench-1/widget-00042", false, outcome_done, NULL);
	else
		c_callback(obj, "bench-1/widget-00042", &o);
	if (i % CLOSE_BATCH == 0)
		uv_run(loop,
		       UV_RUN_NOWAIT); /* the finished tasks' timers closed, as the loop does */
}

/* The CPU time of N calls (after WARMUP): the mean from one clock reading around all of
 * them (the loop's turns that close finished tasks' timers included), p50/p99 from a
 * second run timing each call alone (less what reading the clock costs). */
static struct timing time_calls(uv_loop_t *loop, struct ks_plugin *p, const cJSON *obj)
{
	uint64_t *ns = ks_xcalloc(N, sizeof(*ns)), t0, clock_cost;
	struct timing r;
	int i;

	for (i = 0; i < WARMUP; i++)
		call(loop, p, obj, i);
	t0 = cpu_ns();
	for (i = 0; i < N; i++)
		call(loop, p, obj, i);
	r.mean_us = (double)(cpu_ns() - t0) / N / 1e3;
	for (i = 0; i < N; i++) {
		t0 = cpu_ns();
		ns[i] = cpu_ns() - t0;
	}
	qsort(ns, N, sizeof(*ns), cmp_u64);
	clock_cost = ns[N / 2];
	for (i = 0; i < N; i++) {
		t0 = cpu_ns();
		call(loop, p, obj, 1);
		ns[i] = cpu_ns() - t0;
		ns[i] = ns[i] > clock_cost ? ns[i] - clock_cost : 0;
		if (i % CLOSE_BATCH == 0)
			uv_run(loop, UV_RUN_NOWAIT);
	}
	uv_run(loop, UV_RUN_NOWAIT);
	qsort(ns, N, sizeof(*ns), cmp_u64);
	r.p50_us = (double)ns[N / 2] / 1e3;
	r.p99_us = (double)ns[N * 99 / 100] / 1e3;
	free(ns);
	return r;
}

static const char *verdict(double v, double aim)
{
	return v <= aim ? "met" : "MISSED";
}

static void overhead(uv_loop_t *loop, const struct ks_lua_host *host)
{
	cJSON *obj = ks_json_parse(widget_json, sizeof(widget_json) - 1);
	struct timing lua, c;
	struct ks_plugin *p;
	char *err = NULL;
	double over;

	p = ks_plugin_load(host, "empty.lua", empty_src, sizeof(empty_src) - 1, &err);
	if (!p || !obj) {
		fprintf(stderr, "bench_plugin: %s\n", err ? err : "bad object");
		exit(1);
	}
	lua = time_calls(loop, p, obj);
	c = time_calls(loop, NULL, obj);
	over = lua.mean_us - c.mean_us;
	printf("== overhead per reconcile, empty plugin vs a direct C callback (n=%d, %zu B "
	       "object,\n"
	       "   this thread's CPU time)\n",
	       N, sizeof(widget_json) - 1);
	printf("%-46s %8.2f us mean  %8.2f p50  %8.2f p99\n",
	       "Lua plugin (ks_plugin_run, as run.c)", lua.mean_us, lua.p50_us, lua.p99_us);
	printf("%-46s %8.3f us mean  %8.3f p50  %8.3f p99\n", "C callback, called directly",
	       c.mean_us, c.p50_us, c.p99_us);
	printf("%-46s %8.2f us       (aim <= %.0f us: %s)\n", "host overhead per reconcile", over,
	       AIM_OVERHEAD_US, verdict(over, AIM_OVERHEAD_US));
	printf("%-46s %8.2f us       (p50 %.2f us; the aim is for the mean)\n",
	       "host overhead per reconcile, p99", lua.p99_us - c.p99_us, lua.p50_us - c.p50_us);
	if (failures || outcomes < 2L * (2 * N + WARMUP))
		printf("!! %ld failed reconciles, %ld outcomes\n", failures, outcomes);
	printf("%-46s %8.1f KiB\n", "the empty plugin's state after the run",
	       (double)ks_lua_memory(p->lua) / 1024);
	ks_plugin_free(p, "bench over");
	uv_run(loop, UV_RUN_NOWAIT);
	cJSON_Delete(obj);
}

/* ---- memory ----------------------------------------------------------------------------- */

static void memory_of(uv_loop_t *loop, const struct ks_lua_host *host, const char *name,
		      const char *src, size_t len)
{
	struct ks_plugin *ps[STATES];
	size_t before, after, loaded, collected;
	char what[96], *err = NULL;
	int i;

	before = mallinfo2().uordblks;
	for (i = 0; i < STATES; i++) {
		ps[i] = ks_plugin_load(host, name, src, len, &err);
		if (!ps[i]) {
			fprintf(stderr, "bench_plugin: %s: %s\n", name, err);
			exit(1);
		}
	}
	after = mallinfo2().uordblks;
	loaded = ks_lua_memory(ps[0]->lua);
	lua_gc(ks_lua_state(ps[0]->lua), LUA_GCCOLLECT, 0);
	collected = ks_lua_memory(ps[0]->lua);
	snprintf(what, sizeof(what), "%s: Lua state as loaded", name);
	printf("%-46s %8.1f KiB     (aim <= %.0f KiB: %s)\n", what, (double)loaded / 1024,
	       AIM_STATE_KIB, verdict((double)loaded / 1024, AIM_STATE_KIB));
	snprintf(what, sizeof(what), "%s: after a full GC", name);
	printf("%-46s %8.1f KiB     (aim <= %.0f KiB: %s)\n", what, (double)collected / 1024,
	       AIM_STATE_KIB, verdict((double)collected / 1024, AIM_STATE_KIB));
	snprintf(what, sizeof(what), "%s: C heap per state (%d loaded)", name, STATES);
	printf("%-46s %8.1f KiB\n", what, (double)(after - before) / STATES / 1024);
	for (i = 0; i < STATES; i++)
		ks_plugin_free(ps[i], "bench over");
	uv_run(loop, UV_RUN_NOWAIT);
}

static void memory(uv_loop_t *loop, const struct ks_lua_host *host)
{
	size_t len;
	int rc;
	char *net = ks_read_file("plugins/network.lua", &len, &rc);

	printf("== memory per plugin state\n");
	memory_of(loop, host, "empty.lua", empty_src, sizeof(empty_src) - 1);
	if (!net) {
		printf("plugins/network.lua: %s (run from the top of the tree)\n", strerror(-rc));
		return;
	}
	memory_of(loop, host, "network.lua", net, len);
	free(net);
}

/* --profile: only the plugin path, 1,000,000 times and no clock reading, for
 * `perf record -g build/bench/bench_plugin --profile`. */
static void profile(uv_loop_t *loop, const struct ks_lua_host *host)
{
	cJSON *obj = ks_json_parse(widget_json, sizeof(widget_json) - 1);
	struct ks_plugin *p;
	char *err = NULL;
	int i;

	p = ks_plugin_load(host, "empty.lua", empty_src, sizeof(empty_src) - 1, &err);
	if (!p || !obj) {
		fprintf(stderr, "bench_plugin: %s\n", err ? err : "bad object");
		exit(1);
	}
	for (i = 0; i < 1000000; i++)
		call(loop, p, obj, i);
	printf("%ld reconciles, %ld failed\n", outcomes, failures);
	ks_plugin_free(p, "bench over");
	cJSON_Delete(obj);
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	struct ks_lua_host host = { .loop = loop, .stdlib_dir = "stdlib" };

	ks_log_set_level(KS_LOG_WARN);
	host.http = ks_http_new(loop);
	if (getenv("KS_STDLIB"))
		host.stdlib_dir = getenv("KS_STDLIB");
	if (argc > 1 && strcmp(argv[1], "--profile") == 0) {
		profile(loop, &host);
	} else {
		overhead(loop, &host);
		memory(loop, &host);
	}
	ks_http_free(host.http);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
