/*
 * test_fake.c: a host's fake (lua/fake.h): the calls it answers still yield and resume
 * from the loop, the calls it declines go out for real, a cancelled task drops its
 * answer, and ctx.event reaches it.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "http.h"
#include "json.h"
#include "ks.h"
#include "lua/engine.h"
#include "lua/fake.h"
#include "plugin/plugin.h"
#include "test.h"

static uv_loop_t loop;
static struct ks_http *http;

struct world {
	struct ks_lua_fake fake;
	int http_calls, kube_calls, events;
	char last[256];
};

static bool fake_http(struct ks_lua_fake *f, const struct ks_lua_fake_http *req,
		      struct ks_lua_fake_reply *out)
{
	struct world *w = KS_CONTAINER_OF(f, struct world, fake);

	w->http_calls++;
	snprintf(w->last, sizeof(w->last), "%s %s %.*s%s", req->method, req->url,
		 (int)req->body_len, req->body ? req->body : "",
		 req->changes_nothing ? " (changes nothing)" : "");
	if (strstr(req->url, "/real"))
		return false;
	out->status = 201;
	out->headers = ks_xstrdup("X-Thing: one\r\nContent-Type: text/plain\r\n");
	out->body = ks_xstrdup("made");
	out->body_len = 4;
	return true;
}

static bool fake_kube(struct ks_lua_fake *f, const struct ks_lua_fake_kube *k,
		      struct ks_lua_fake_reply *out)
{
	struct world *w = KS_CONTAINER_OF(f, struct world, fake);

	w->kube_calls++;
	snprintf(w->last, sizeof(w->last), "%s %s %s/%s", k->verb, k->res->resource,
		 k->ns ? k->ns : "", k->name ? k->name : "");
	if (strcmp(k->verb, "get") == 0) {
		out->status = 404;
		out->reason = ks_xstrdup("NotFound");
		out->message = ks_xstrdup("not here");
		return true;
	}
	out->status = 200;
	out->json = k->body ? cJSON_Duplicate(k->body, true) : NULL;
	return true;
}

static void fake_event(struct ks_lua_fake *f, const cJSON *obj, const char *type,
		       const char *reason, const char *message)
{
	struct world *w = KS_CONTAINER_OF(f, struct world, fake);

	w->events++;
	snprintf(w->last, sizeof(w->last), "%s %s %s %s", ks_json_str(obj, "metadata.name"), type,
		 reason, message);
}

struct result {
	bool done, ok;
	char out[512];
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
}

static struct world world(void)
{
	return (struct world){ .fake = { fake_http, fake_kube, fake_event } };
}

/* Spawn src with w as the host's fake; *yielded tells whether it was still running after
 * the spawn returned; then run the loop to its end. */
static struct result run(struct world *w, const char *src, bool *yielded)
{
	struct ks_lua_host h = {
		.loop = &loop, .http = http, .stdlib_dir = "stdlib", .fake = &w->fake
	};
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
	struct result r = { 0 };
	char *err = NULL;

	if (ks_lua_compile(e, "=test", src, strlen(src), &err) != 0) {
		snprintf(r.out, sizeof(r.out), "compile: %s", err);
		free(err);
	} else {
		*yielded = ks_lua_spawn(e, 0, done, &r) != NULL && !r.done;
		while (!r.done && uv_run(&loop, UV_RUN_ONCE))
			;
	}
	ks_lua_free(e);
	uv_run(&loop, UV_RUN_NOWAIT);
	return r;
}

TEST(an_answered_http_call_yields_and_resumes_with_the_answer)
{
	struct world w = world();
	bool yielded = false;
	struct result r =
		run(&w,
		    "local http = require 'ks.core.http'\n"
		    "local res = http.request { method = 'POST', url = 'http://x.test/a',\n"
		    "  body = 'hello' }\n"
		    "return res.status .. ' ' .. res.headers['x-thing'] .. ' ' .. res.body",
		    &yielded);

	ASSERT(r.ok);
	ASSERT(yielded);
	ASSERT_STR(r.out, "201 one made");
	ASSERT_EQ(w.http_calls, 1);
	ASSERT_STR(w.last, "POST http://x.test/a hello");
}

/* A dry run lets through what its caller marks as changing nothing (a login's POST):
 * the mark reaches the fake, and only when given. */
TEST(a_request_marked_as_changing_nothing_says_so_to_the_fake)
{
	struct world w = world();
	bool yielded = false;
	struct result r = run(&w,
			      "local http = require 'ks.core.http'\n"
			      "http.request { method = 'POST', url = 'http://x.test/login',\n"
			      "  body = 'me', changes_nothing = true }\n"
			      "return 'ok'",
			      &yielded);

	ASSERT(r.ok);
	ASSERT_STR(w.last, "POST http://x.test/login me (changes nothing)");
	r = run(&w, "require('ks.core.http').request { method = 'POST', url = 'http://x.test/b' }",
		&yielded);
	ASSERT_STR(w.last, "POST http://x.test/b ");
}

TEST(a_declined_http_call_goes_out_for_real)
{
	struct world w = world();
	bool yielded = false;
	struct result r = run(&w,
			      "local http = require 'ks.core.http'\n"
			      "local res, err = http.request { url = 'http://127.0.0.1:9/real',\n"
			      "  timeout = 5 }\n"
			      "return tostring(res) .. ' ' .. err.reason",
			      &yielded);

	ASSERT(r.ok);
	ASSERT(yielded);
	ASSERT_STR(r.out, "nil ConnectionRefused");
	ASSERT_EQ(w.http_calls, 1);
}

TEST(kube_writes_go_to_the_fake_without_a_connection)
{
	struct world w = world();
	bool yielded = false;
	struct result r =
		run(&w,
		    "local kube = require 'ks.core.kube'\n"
		    "local cm = { apiVersion = 'v1', kind = 'ConfigMap',\n"
		    "  metadata = { name = 'c', namespace = 'n' }, data = { k = 'v' } }\n"
		    "local got = kube.apply(cm)\n"
		    "local ok = kube.delete({ version = 'v1', kind = 'ConfigMap' }, 'n', 'c')\n"
		    "local none, err = kube.fetch({ version = 'v1', kind = 'Secret' }, 'n', 's')\n"
		    "return got.data.k .. ' ' .. tostring(ok) .. ' ' .. tostring(none) .. ' ' ..\n"
		    "  err.code .. ' ' .. err.reason",
		    &yielded);

	ASSERT(r.ok);
	ASSERT(yielded);
	ASSERT_STR(r.out, "v true nil 404 NotFound");
	ASSERT_EQ(w.kube_calls, 3);
	ASSERT_STR(w.last, "get secrets n/s");
}

TEST(a_cancelled_task_drops_the_answer)
{
	struct world w = world();
	struct ks_lua_host h = { .loop = &loop, .http = http, .fake = &w.fake };
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
	const char *src = "return require('ks.core.http').request { url = 'http://x.test/' }";
	struct result r = { 0 };
	struct ks_lua_task *t;
	char *err = NULL;

	ASSERT_EQ(ks_lua_compile(e, "=test", src, strlen(src), &err), 0);
	t = ks_lua_spawn(e, 0, done, &r);
	ASSERT(t != NULL);
	ks_lua_task_cancel(t, "test");
	ASSERT(r.done && !r.ok);
	uv_run(&loop, UV_RUN_NOWAIT); /* the zero timer is closed, not fired */
	ASSERT(strstr(r.out, "cancelled: test") != NULL);
	ks_lua_free(e);
	uv_run(&loop, UV_RUN_NOWAIT);
}

static void reconciled(const struct ks_outcome *o, void *data)
{
	struct result *r = data;

	r->done = true;
	r->ok = !o->error;
	snprintf(r->out, sizeof(r->out), "%s", o->error ? o->error : "");
}

TEST(ctx_event_reaches_the_fake)
{
	struct world w = world();
	struct ks_lua_host h = { .loop = &loop, .fake = &w.fake };
	const char *src = "return { api = 1, group = 'g', version = 'v1', kind = 'K',\n"
			  "  reconcile = function(obj, ctx)\n"
			  "    ctx.event('Normal', 'Seen', 'saw ' .. obj.metadata.name)\n"
			  "    return {}\n"
			  "  end }";
	cJSON *obj = ks_json_parse("{\"metadata\":{\"name\":\"o1\",\"namespace\":\"n\"}}", 44);
	struct result r = { 0 };
	char *err = NULL;
	struct ks_plugin *p = ks_plugin_load(&h, "k.lua", src, strlen(src), &err);

	ASSERT(p != NULL);
	ks_plugin_run(p, NULL, obj, "n/o1", false, reconciled, &r);
	while (!r.done && uv_run(&loop, UV_RUN_ONCE))
		;
	ASSERT(r.ok);
	ASSERT_EQ(w.events, 1);
	ASSERT_STR(w.last, "o1 Normal Seen saw o1");
	ks_plugin_free(p, "done");
	cJSON_Delete(obj);
	uv_run(&loop, UV_RUN_NOWAIT);
}

int main(void)
{
	uv_loop_init(&loop);
	http = ks_http_new(&loop);
	RUN(an_answered_http_call_yields_and_resumes_with_the_answer);
	RUN(a_request_marked_as_changing_nothing_says_so_to_the_fake);
	RUN(a_declined_http_call_goes_out_for_real);
	RUN(kube_writes_go_to_the_fake_without_a_connection);
	RUN(a_cancelled_task_drops_the_answer);
	RUN(ctx_event_reaches_the_fake);
	ks_http_free(http);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_MAIN();
}
