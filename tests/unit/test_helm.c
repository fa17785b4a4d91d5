/*
 * test_helm.c: ks.core.helm against the real helm (KS_HELM, or helm on PATH:
 * `eval "$(tests/env/helm)"`) and the charts in tests/fixtures/charts/, and against
 * fake helms (shell scripts) for what the real one will not do on demand: hang, print
 * slowly, print the same thing fast.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>

#include "helm.h"
#include "ks.h"
#include "lua/engine.h"
#include "test.h"

#define DEMO "tests/fixtures/charts/demo"

#define ASSERT_HAS(s, needle)                                                   \
	do {                                                                    \
		if (!strstr((s), (needle)))                                     \
			FAIL_("\"%s\" does not contain \"%s\"", (s), (needle)); \
	} while (0)

static uv_loop_t loop;
static char dir[64];		  /* scratch: fake helms, their pid files, copied charts */
static char tmpdir[96];		  /* TMPDIR of the renders: must be empty between them */
static const char *helm_override; /* host.helm of the next runs */

struct result {
	bool done, ok;
	char out[4096];
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

static struct ks_lua *engine(void)
{
	struct ks_lua_host h = { .loop = &loop, .stdlib_dir = "stdlib", .helm = helm_override };

	return ks_lua_new("test", &h, NULL);
}

/* Spawn src as a task of e; NULL when it finished at once (r says how). */
static struct ks_lua_task *spawn(struct ks_lua *e, const char *src, struct result *r)
{
	char *err = NULL;

	if (ks_lua_compile(e, "=test", src, strlen(src), &err) != 0) {
		snprintf(r->out, sizeof(r->out), "compile: %s", err);
		free(err);
		r->done = true;
		return NULL;
	}
	return ks_lua_spawn(e, 0, done, r);
}

/* Run src as a task to its end. */
static struct result run(const char *src)
{
	struct ks_lua *e = engine();
	struct result r = { 0 };

	spawn(e, src, &r);
	while (!r.done && uv_run(&loop, UV_RUN_ONCE))
		;
	ks_lua_free(e);
	return r;
}

/* A render of the demo chart returning "kind:name:detail ..." of what helm printed. */
static struct result render(const char *values, const char *opts)
{
	char src[2048];

	snprintf(src, sizeof(src),
		 "local helm = require 'ks.core.helm'\n"
		 "local objs, err = helm.render('" DEMO "', %s, %s)\n"
		 "if not objs then return 'error ' .. tostring(err) end\n"
		 "local out = {}\n"
		 "for _, o in ipairs(objs) do\n"
		 "  local d = o.kind == 'Deployment' and o.spec.replicas\n"
		 "    or o.kind == 'ConfigMap' and (o.data.greeting .. ',' .. (o.data.color or "
		 "'-')\n"
		 "      .. ',' .. (o.data.hasExample or '-') .. ',' .. o.data.kubeVersion)\n"
		 "    or o.spec.group\n"
		 "  out[#out + 1] = o.kind .. ':' .. o.metadata.name .. ':' .. tostring(d)\n"
		 "end\n"
		 "return table.concat(out, ' ')",
		 values, opts);
	return run(src);
}

static struct ks_helm_stats stats(void)
{
	struct ks_helm_stats s;

	ks_helm_stats(&s);
	return s;
}

/* Write an executable shell script at dir/name; returns its path (static). */
static const char *fake_helm(const char *name, const char *body)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fprintf(f, "#!/bin/sh\n%s", body);
	fclose(f);
	chmod(path, 0755);
	return path;
}

static pid_t read_pid(const char *name)
{
	char path[128];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* pid runs (a zombie does not count: its parent may be a PID 1 that never reaps). */
static bool alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool zombie = false;

	if (kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		zombie = p[2] == 'Z';
	if (f)
		fclose(f);
	return !zombie;
}

static bool gone_soon(pid_t pid)
{
	int i;

	for (i = 0; i < 200 && alive(pid); i++)
		usleep(10000);
	return !alive(pid);
}

static int tmpdir_entries(void)
{
	char cmd[160];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", tmpdir);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

TEST(render_with_values_gives_the_objects)
{
	struct ks_helm_stats before = stats();
	struct result r = render("{ replicas = 3, greeting = 'hi', settings = { color = 'blue' } }",
				 "{ release = 'rel', namespace = 'ns1' }");

	ASSERT(r.ok);
	ASSERT_HAS(r.out, "ConfigMap:rel-config:hi,blue,-,v1."); /* helm's default kube version */
	ASSERT_HAS(r.out, " Deployment:rel-demo:3");
	ASSERT_EQ(stats().runs, before.runs + 1);
	ASSERT_EQ(tmpdir_entries(), 0);
	/* The objects are tables: the namespace and nested lists come through. */
	r = run("local objs = require('ks.core.helm').render('" DEMO
		"', nil, { namespace = 'x' })\n"
		"local d = objs[2]\n"
		"return d.metadata.namespace .. ' ' .. d.spec.template.spec.containers[1].image\n"
		"  .. ' ' .. #objs .. ' ' .. d.spec.replicas");
	ASSERT(r.ok);
	ASSERT_STR(r.out, "x registry.example/demo:1.0 2 1");
}

TEST(the_same_chart_and_values_are_a_cache_hit)
{
	struct ks_helm_stats before = stats(), after;
	const char *values = "{ replicas = 5, settings = { b = '2', a = '1', c = '3' } }";
	struct result a = render(values, "{ release = 'hit' }");
	struct result b = render(values, "{ release = 'hit' }");

	after = stats();
	ASSERT(a.ok && b.ok);
	ASSERT_STR(a.out, b.out);
	ASSERT_HAS(b.out, "Deployment:hit-demo:5");
	ASSERT_EQ(after.runs, before.runs + 1);
	ASSERT_EQ(after.hits, before.hits + 1);
	/* The same values built in another order hit too (keys are sorted). */
	b = run("local v = { settings = {} }\n"
		"v.settings.c = '3'; v.settings.a = '1'; v.settings.b = '2'; v.replicas = 5\n"
		"return #require('ks.core.helm').render('" DEMO "', v, { release = 'hit' })");
	ASSERT_STR(b.out, "2");
	ASSERT_EQ(stats().runs, before.runs + 1);
	ASSERT_EQ(stats().hits, before.hits + 2);
}

TEST(changed_values_or_options_render_again)
{
	struct ks_helm_stats before = stats();
	struct result a = render("{ replicas = 6 }", "{ release = 'chg' }");
	struct result b = render("{ replicas = 7 }", "{ release = 'chg' }");
	struct result c = render("{ replicas = 7 }", "{ release = 'chg2' }");

	ASSERT(a.ok && b.ok && c.ok);
	ASSERT_HAS(a.out, "Deployment:chg-demo:6");
	ASSERT_HAS(b.out, "Deployment:chg-demo:7");
	ASSERT_HAS(c.out, "Deployment:chg2-demo:7");
	ASSERT_EQ(stats().runs, before.runs + 3);
	ASSERT_EQ(stats().hits, before.hits);
}

TEST(options_reach_helm)
{
	struct result r =
		render("nil", "{ release = 'opt', kube_version = '1.29.0', include_crds = true,\n"
			      "  api_versions = { 'example.org/v1', 'other.org/v2' } }");

	ASSERT(r.ok);
	ASSERT_STR(r.out, "CustomResourceDefinition:gadgets.demo.example.org:demo.example.org "
			  "ConfigMap:opt-config:hello,-,true,v1.29.0 Deployment:opt-demo:1");
}

TEST(a_changed_chart_file_is_a_new_digest)
{
	struct ks_helm_stats before = stats();
	char cmd[256], chart[128], src[512];
	struct result a, b;

	snprintf(chart, sizeof(chart), "%s/demo-copy", dir);
	snprintf(cmd, sizeof(cmd), "cp -r " DEMO " '%s'", chart);
	ASSERT_EQ(system(cmd), 0);
	snprintf(src, sizeof(src),
		 "local objs, err = require('ks.core.helm').render('%s')\n"
		 "return objs and objs[1].data.greeting or tostring(err)",
		 chart);
	a = run(src);
	snprintf(cmd, sizeof(cmd),
		 "sed -i 's/^greeting: hello/greeting: changed/' '%s/values.yaml'", chart);
	ASSERT_EQ(system(cmd), 0);
	b = run(src);
	ASSERT_STR(a.out, "hello");
	ASSERT_STR(b.out, "changed");
	ASSERT_EQ(stats().runs, before.runs + 2);
}

TEST(a_packaged_chart_renders_and_caches)
{
	struct ks_helm_stats before = stats();
	char cmd[512], src[512];
	struct result a, b;

	snprintf(cmd, sizeof(cmd), "\"${KS_HELM:-helm}\" package " DEMO " -d '%s' >/dev/null", dir);
	ASSERT_EQ(system(cmd), 0);
	snprintf(src, sizeof(src),
		 "local objs, err = require('ks.core.helm').render('%s/demo-0.1.0.tgz', { replicas "
		 "= 2 })\n"
		 "return objs and objs[2].spec.replicas or tostring(err)",
		 dir);
	a = run(src);
	b = run(src);
	ASSERT_STR(a.out, "2");
	ASSERT_STR(b.out, "2");
	ASSERT_EQ(stats().runs, before.runs + 1);
	ASSERT_EQ(stats().hits, before.hits + 1);
}

TEST(a_chart_error_is_nil_err_with_helms_message)
{
	struct ks_helm_stats before = stats();
	struct result r =
		run("local objs, err = require('ks.core.helm').render("
		    "'tests/fixtures/charts/broken', { x = 1 })\n"
		    "return tostring(objs) .. ' ' .. err.reason .. ' ' .. err.code .. ' '\n"
		    "  .. err.message");

	ASSERT(r.ok);
	ASSERT_HAS(r.out, "nil HelmFailed 1 helm template exited with status 1\n");
	ASSERT_HAS(r.out, "parse error at (broken/templates/configmap.yaml:7)");
	ASSERT_HAS(r.out, "unclosed action");
	ASSERT_EQ(stats().failures, before.failures + 1);
	ASSERT_EQ(tmpdir_entries(), 0);
	r = run("local objs, err = require('ks.core.helm').render('tests/fixtures/charts/nope')\n"
		"return err.reason .. ': ' .. err.message");
	ASSERT_STR(r.out, "ChartError: could not read chart tests/fixtures/charts/nope: "
			  "No such file or directory");
	/* Failures are not cached: the broken chart runs helm again. */
	r = run("return select(2, require('ks.core.helm').render('tests/fixtures/charts/broken', "
		"{ x = 1 })).reason");
	ASSERT_STR(r.out, "HelmFailed");
	ASSERT_EQ(stats().runs, before.runs + 2);
}

TEST(caller_bugs_raise_and_a_missing_helm_is_an_error)
{
	struct ks_helm_opts o = { .chart = DEMO, .release = "--post-renderer=/bin/sh" };
	struct result r;

	ASSERT(ks_helm_check(&o) != NULL);
	ASSERT(ks_helm_render(&loop, &o, NULL, NULL) == NULL);
	r = run("return require('ks.core.helm').render('" DEMO "', nil, "
		"{ release = '--post-renderer=/bin/sh' })");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "release name must be");
	r = run("return require('ks.core.helm').render('" DEMO "', { 1, 2 })");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "values must be a table of names");
	r = run("return require('ks.core.helm').render('" DEMO "', { f = print })");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "no JSON form");
	r = run("return require('ks.core.helm').render('" DEMO "', nil, { api_versions = 'x' })");
	ASSERT(!r.ok);
	ASSERT_HAS(r.out, "list of strings");
	r = run("local co = coroutine.wrap(function() require('ks.core.helm').render('" DEMO
		"') end)\n"
		"co()");
	ASSERT(!r.ok);
	helm_override = "/nonexistent/helm";
	r = run("local objs, err = require('ks.core.helm').render('" DEMO "', { a = 1 })\n"
		"return tostring(err)");
	helm_override = NULL;
	ASSERT(r.ok);
	ASSERT_HAS(r.out, "SpawnError: could not run /nonexistent/helm: no such file");
	ASSERT_EQ(tmpdir_entries(), 0);
}

static void tick(uv_timer_t *t)
{
	(*(int *)t->data)++;
}

TEST(a_timeout_kills_helm_and_its_children)
{
	char body[512], *saved = getenv("KS_HELM") ? ks_xstrdup(getenv("KS_HELM")) : NULL;
	uint64_t t0 = ks_now_ns();
	struct result r;

	snprintf(body, sizeof(body),
		 "echo $$ > %s/hang.pid\nsleep 30 &\necho $! > %s/hang.child\nwait\n", dir, dir);
	setenv("KS_HELM", fake_helm("hang", body), 1);
	r = run("local objs, err = require('ks.core.helm').render('" DEMO "', { a = 1 }, "
		"{ timeout = 0.3 })\n"
		"return tostring(err) .. ' ' .. err.code");
	if (saved)
		setenv("KS_HELM", saved, 1);
	else
		unsetenv("KS_HELM");
	free(saved);
	ASSERT(r.ok);
	ASSERT_HAS(r.out, "Timeout: helm template timed out after 0.3 s and was killed 0");
	ASSERT((ks_now_ns() - t0) < 3000000000ull);
	ASSERT(read_pid("hang.pid") > 0 && read_pid("hang.child") > 0);
	ASSERT(!alive(read_pid("hang.pid")));
	ASSERT(gone_soon(read_pid("hang.child")));
	ASSERT_EQ(tmpdir_entries(), 0);
}

TEST(cancelling_the_task_kills_helm_and_removes_the_values_file)
{
	char body[512], args[256], path[PATH_MAX] = "";
	struct ks_helm_stats before = stats();
	struct result r = { 0 };
	struct ks_lua_task *t;
	struct ks_lua *e;
	uv_timer_t timer;
	int ticks = 0;
	FILE *f;

	snprintf(body, sizeof(body),
		 "echo $$ > %s/cancel.pid\nsleep 30 &\necho $! > %s/cancel.child\n"
		 "for a; do echo \"$a\"; done > %s/cancel.args\nwait\n",
		 dir, dir, dir);
	helm_override = fake_helm("cancel", body);
	e = engine();
	helm_override = NULL;
	t = spawn(e, "return require('ks.core.helm').render('" DEMO "', { a = 1 })", &r);
	ASSERT(t != NULL);
	uv_timer_init(&loop, &timer);
	timer.data = &ticks;
	uv_timer_start(&timer, tick, 10, 10);
	while (read_pid("cancel.child") == 0 && ticks < 500)
		uv_run(&loop, UV_RUN_ONCE);
	usleep(50000); /* the script writes its arguments after the child's pid */
	snprintf(args, sizeof(args), "%s/cancel.args", dir);
	f = fopen(args, "r");
	while (f && fgets(path, sizeof(path), f) && strncmp(path, "--values=", 9) != 0)
		;
	if (f)
		fclose(f);
	path[strcspn(path, "\n")] = '\0';
	ASSERT(!strncmp(path, "--values=", 9) && strstr(path, tmpdir));
	ASSERT_EQ(access(path + 9, F_OK), 0);
	ASSERT(alive(read_pid("cancel.pid")));

	ks_lua_task_cancel(t, "test");
	ASSERT(r.done && !r.ok);
	ASSERT_HAS(r.out, "cancelled: test");
	ASSERT(access(path + 9, F_OK) != 0 && errno == ENOENT);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT); /* helm is reaped, its handles close */
	ASSERT(!alive(read_pid("cancel.pid")));
	ASSERT(gone_soon(read_pid("cancel.child")));
	ASSERT_EQ(stats().cancelled, before.cancelled + 1);
	ASSERT_EQ(tmpdir_entries(), 0);
	ks_lua_free(e);
}

TEST(the_loop_runs_while_helm_does)
{
	char body[512];
	struct result r = { 0 };
	struct ks_lua *e;
	uv_timer_t timer;
	int ticks = 0;

	snprintf(body, sizeof(body),
		 "sleep 0.5\nprintf 'kind: ConfigMap\\nmetadata: {name: slow}\\n---\\n"
		 "kind: Secret\\nmetadata: {name: s}\\n'\n");
	helm_override = fake_helm("slow", body);
	e = engine();
	helm_override = NULL;
	uv_timer_init(&loop, &timer);
	timer.data = &ticks;
	uv_timer_start(&timer, tick, 20, 20);
	spawn(e,
	      "local objs = require('ks.core.helm').render('" DEMO "')\n"
	      "return objs[1].metadata.name .. ' ' .. objs[2].kind",
	      &r);
	while (!r.done && uv_run(&loop, UV_RUN_ONCE))
		;
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_NOWAIT); /* the timer lives on the stack */
	ks_lua_free(e);
	ASSERT(r.ok);
	ASSERT_STR(r.out, "slow Secret");
	ASSERT(ticks >= 15); /* 0.5 s at one tick per 20 ms, give or take */
}

TEST(the_cache_keeps_the_32_most_recent)
{
	struct ks_helm_stats before;
	char src[512];
	struct result r;
	int i;

	ks_helm_cache_clear();
	ASSERT_EQ(stats().entries, 0);
	helm_override = fake_helm("fast", "echo 'kind: ConfigMap'\n");
	before = stats();
	for (i = 0; i <= KS_HELM_CACHE_SIZE; i++) {
		snprintf(src, sizeof(src),
			 "return #require('ks.core.helm').render('" DEMO "', { n = %d })", i);
		r = run(src);
		ASSERT_STR(r.out, "1");
	}
	ASSERT_EQ(stats().entries, KS_HELM_CACHE_SIZE);
	ASSERT_EQ(stats().runs, before.runs + KS_HELM_CACHE_SIZE + 1);
	r = run("return #require('ks.core.helm').render('" DEMO "', { n = 32 })"); /* newest */
	ASSERT_EQ(stats().hits, before.hits + 1);
	r = run("return #require('ks.core.helm').render('" DEMO "', { n = 0 })"); /* evicted */
	ASSERT_EQ(stats().runs, before.runs + KS_HELM_CACHE_SIZE + 2);
	helm_override = NULL;
	ks_helm_cache_clear();
}

struct c_result {
	int calls, err;
	bool cached;
	char kind[32];
};

static void c_done(const struct ks_helm_result *res, void *data)
{
	struct c_result *c = data;
	const cJSON *first = cJSON_GetArrayItem(res->objects, 0);
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(first, "kind");

	c->calls++;
	c->err = res->err;
	c->cached = res->cached;
	snprintf(c->kind, sizeof(c->kind), "%s", cJSON_IsString(kind) ? kind->valuestring : "");
}

TEST(the_c_api_calls_back_from_the_loop_and_cancels_before_helm_runs)
{
	struct ks_helm_opts o = { .chart = DEMO, .values = "{\"replicas\":9}", .release = "capi" };
	struct ks_helm_stats before = stats();
	struct c_result a = { 0 }, b = { 0 }, c = { 0 };
	struct ks_helm_req *req;

	ASSERT(ks_helm_render(&loop, &o, c_done, &a) != NULL);
	ASSERT_EQ(a.calls, 0); /* never from inside ks_helm_render */
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(a.calls, 1);
	ASSERT_EQ(a.err, 0);
	ASSERT(!a.cached);
	ASSERT_STR(a.kind, "ConfigMap");
	ASSERT(ks_helm_render(&loop, &o, c_done, &b) != NULL);
	ASSERT_EQ(b.calls, 0); /* a hit too waits for the loop */
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(b.calls == 1 && b.cached && !strcmp(b.kind, "ConfigMap"));
	/* Cancelled while the digest is computed: no callback, no helm, no file left. */
	o.values = "{\"replicas\":10}";
	req = ks_helm_render(&loop, &o, c_done, &c);
	ASSERT(req != NULL);
	ASSERT_EQ(ks_helm_pid(req), 0);
	ks_helm_cancel(req);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(c.calls, 0);
	ASSERT_EQ(stats().runs, before.runs + 1);
	ASSERT_EQ(stats().cancelled, before.cancelled + 1);
	ASSERT_EQ(tmpdir_entries(), 0);
}

/* KS_HELM, else helm on PATH; false with a message when neither. */
static bool find_helm(void)
{
	const char *env = getenv("KS_HELM");

	if (env && env[0])
		return access(env, X_OK) == 0;
	return system("command -v helm >/dev/null 2>&1") == 0;
}

int main(void)
{
	char cmd[160];

	if (!find_helm()) {
		printf("not ok - helm: no helm binary: set KS_HELM (eval \"$(tests/env/helm)\") "
		       "or put helm on PATH\n0 passed, 1 failed\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "/tmp/ks-test-helm.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
	mkdir(tmpdir, 0700);
	setenv("TMPDIR", tmpdir, 1);
	uv_loop_init(&loop);
	RUN(render_with_values_gives_the_objects);
	RUN(the_same_chart_and_values_are_a_cache_hit);
	RUN(changed_values_or_options_render_again);
	RUN(options_reach_helm);
	RUN(a_changed_chart_file_is_a_new_digest);
	RUN(a_packaged_chart_renders_and_caches);
	RUN(a_chart_error_is_nil_err_with_helms_message);
	RUN(caller_bugs_raise_and_a_missing_helm_is_an_error);
	RUN(a_timeout_kills_helm_and_its_children);
	RUN(cancelling_the_task_kills_helm_and_removes_the_values_file);
	RUN(the_loop_runs_while_helm_does);
	RUN(the_cache_keeps_the_32_most_recent);
	RUN(the_c_api_calls_back_from_the_loop_and_cancels_before_helm_runs);
	ks_helm_cache_clear();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", dir);
	TEST_MAIN();
}
