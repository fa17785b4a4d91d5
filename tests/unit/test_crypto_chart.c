/*
 * test_crypto_chart.c: ks.core.crypto (OpenSSL's random bytes and SHA-256), ks.core.chart
 * (a chart's content digest, the content-addressed chart cache) and the guard of
 * ks.core.http.request (a tenant's URL reaches public addresses or the allowed networks
 * only), run as Lua tasks on a real loop; no server (the guarded requests go to closed
 * ports or are refused before any connection).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "chart.h"
#include "http.h"
#include "ks.h"
#include "lua/engine.h"
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

static struct result run(const char *src)
{
	struct ks_lua_host h = {
		.loop = &loop, .http = http, .metrics = metrics, .stdlib_dir = "stdlib"
	};
	struct ks_lua *e = ks_lua_new("test", &h, NULL);
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

#define ASSERT_OUT(src, want)                                                               \
	do {                                                                                \
		struct result r_ = run(src);                                                \
		if (!r_.ok || strcmp(r_.out, (want)) != 0)                                  \
			FAIL_("%s: got %s \"%s\"", (want), r_.ok ? "ok" : "error", r_.out); \
	} while (0)

TEST(token_is_random_alphanumeric_and_counted)
{
	ASSERT_OUT("local c = require 'ks.core.crypto'\n"
		   "local a, b = c.token(32), c.token(32)\n"
		   "assert(#a == 32 and not a:find('[^%w]') and a ~= b)\n"
		   "local h = c.token(64, 'ab')\n"
		   "assert(#h == 64 and not h:find('[^ab]') and h:find('a') and h:find('b'))\n"
		   "assert(#c.random(16) == 16)\n"
		   "return 'ok'",
		   "ok");
	{
		struct ks_buf b;

		ks_buf_init(&b);
		ks_metrics_render(metrics, &b);
		ASSERT(strstr(b.data, "kupenstack_crypto_random_total{fn=\"token\"} 3") != NULL);
		ks_buf_deinit(&b);
	}
}

TEST(token_refuses_bad_lengths_and_alphabets)
{
	ASSERT_OUT("local c = require 'ks.core.crypto'\n"
		   "local out = {}\n"
		   "for _, f in ipairs({ function() c.token(0) end, function() c.token(5000) end,\n"
		   "  function() c.token(1.5) end, function() c.token(4, 'aa') end,\n"
		   "  function() c.token(4, 'a') end }) do\n"
		   "  out[#out + 1] = tostring(select(2, pcall(f))):match('crypto%.token') or '?'\n"
		   "end\n"
		   "return table.concat(out, ',')",
		   "crypto.token,crypto.token,crypto.token,crypto.token,crypto.token");
}

TEST(sha256_of_a_known_text)
{
	ASSERT_OUT("return require('ks.core.crypto').sha256('abc')",
		   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(store_writes_only_what_matches_its_sha256)
{
	char dir[] = "/tmp/ks-chart-cache-XXXXXX";
	struct result r;

	ASSERT(mkdtemp(dir) != NULL);
	setenv("KS_CHART_CACHE", dir, 1);
	r = run("local ch, c = require 'ks.core.chart', require 'ks.core.crypto'\n"
		"local p, err = ch.store('not it', c.sha256('the chart'))\n"
		"assert(not p and err.reason == 'ChecksumMismatch', tostring(err))\n"
		"return assert(ch.store('the chart', c.sha256('the chart')))");
	ASSERT(r.ok);
	ASSERT(strncmp(r.out, dir, strlen(dir)) == 0);
	ASSERT(strstr(r.out, ".tgz") != NULL);
	{
		FILE *f = fopen(r.out, "r");
		char buf[64] = { 0 };

		ASSERT(f != NULL);
		ASSERT(fread(buf, 1, sizeof(buf) - 1, f) == 9);
		fclose(f);
		ASSERT_STR(buf, "the chart");
		unlink(r.out);
	}
	rmdir(dir);
	unsetenv("KS_CHART_CACHE");
}

TEST(digest_of_a_chart_and_of_nothing)
{
	ASSERT_OUT("local ch = require 'ks.core.chart'\n"
		   "local d = assert(ch.digest('tests/fixtures/charts/osh-svc'))\n"
		   "assert(#d == 71 and d:find('^sha256:[0-9a-f]+$'))\n"
		   "assert(d == ch.digest('tests/fixtures/charts/osh-svc'))\n"
		   "assert(d ~= ch.digest('tests/fixtures/charts/demo'))\n"
		   "local _, err = ch.digest('tests/fixtures/charts/none')\n"
		   "return err.reason",
		   "ChartError");
}

/* A file's digest is its SHA-256 (FIPS 180-2's "abc"); a directory's mixes each file's
 * path and length too, so that moving or splitting content changes it. */
TEST(digest_of_a_file_is_its_sha256)
{
	char dir[] = "/tmp/ks-test-chart.XXXXXX", f[256], d1[KS_CHART_DIGEST_LEN + 1],
	     d2[KS_CHART_DIGEST_LEN + 1];
	FILE *fp;

	ASSERT(mkdtemp(dir));
	snprintf(f, sizeof(f), "%s/a", dir);
	ASSERT((fp = fopen(f, "w")) && fputs("abc", fp) >= 0 && fclose(fp) == 0);
	ASSERT(ks_chart_digest(f, d1) == 0);
	ASSERT_STR(d1, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ASSERT(ks_chart_digest(dir, d1) == 0);
	ASSERT(strcmp(d1,
		      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	unlink(f);
	snprintf(f, sizeof(f), "%s/b", dir); /* the same bytes under another name */
	ASSERT((fp = fopen(f, "w")) && fputs("abc", fp) >= 0 && fclose(fp) == 0);
	ASSERT(ks_chart_digest(dir, d2) == 0 && strcmp(d1, d2) != 0);
	unlink(f);
	ASSERT(rmdir(dir) == 0);
	ASSERT(ks_chart_digest(dir, d2) == -ENOENT && d2[0] == '\0');
}

TEST(guarded_requests_reach_allowed_networks_only)
{
	/* Port 1 on loopback is closed: allowed, the request is refused by the peer;
	 * not allowed, by the guard before any connection. */
	ASSERT_OUT(
		"local http = require 'ks.core.http'\n"
		"local _, e1 = http.request{ url = 'http://127.0.0.1:1/', guard = true }\n"
		"local _, e2 = http.request{ url = 'http://127.0.0.1:1/', guard = true,\n"
		"                            allow = '127.0.0.0/8' }\n"
		"local _, e3 = http.request{ url = 'http://169.254.169.254:1/', guard = true,\n"
		"                            allow = '127.0.0.0/8', timeout = 5 }\n"
		"local _, e4 = http.request{ url = 'http://127.0.0.1:1/' }\n"
		"return table.concat({ e1.reason, e1.message:match('127.0.0.1 is a loopback') or\n"
		"  e1.message, e2.reason, e3.reason, e4.reason }, ',')",
		"Refused,127.0.0.1 is a loopback,ConnectionRefused,Refused,ConnectionRefused");
	ASSERT_OUT("local ok, err = pcall(require('ks.core.http').request,\n"
		   "  { url = 'http://x/', guard = true, allow = 'nonsense' })\n"
		   "return tostring(err):match('allow: .*') and 'raised' or tostring(err)",
		   "raised");
}

int main(void)
{
	uv_loop_init(&loop);
	http = ks_http_new(&loop);
	metrics = ks_metrics_new();
	RUN(token_is_random_alphanumeric_and_counted);
	RUN(token_refuses_bad_lengths_and_alphabets);
	RUN(sha256_of_a_known_text);
	RUN(store_writes_only_what_matches_its_sha256);
	RUN(digest_of_a_chart_and_of_nothing);
	RUN(digest_of_a_file_is_its_sha256);
	RUN(guarded_requests_reach_allowed_networks_only);
	ks_http_free(http);
	ks_metrics_free(metrics);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_MAIN();
}
