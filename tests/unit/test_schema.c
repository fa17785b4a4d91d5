/*
 * test_schema.c: config_schema (plugin/schema.h) checked at load, the operator's settings
 * checked against it into ctx.config, and a new version vetted before it may replace a
 * running one (plugin/candidate.h): its settings file and the fixtures shipped beside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "json.h"
#include "ks.h"
#include "fixture/fixture.h"
#include "lua/bind.h"
#include "plugin/candidate.h"
#include "plugin/plugin.h"
#include "test.h"

static uv_loop_t loop;

#define HEAD "return { api = 1, group = 'g', version = 'v1', kind = 'K', "
#define TAIL " reconcile = function(obj, ctx) return { status = { t = ctx.config.timeout } } end }"

static struct ks_lua_host host(void)
{
	return (struct ks_lua_host){ .loop = &loop, .stdlib_dir = "stdlib" };
}

static struct ks_plugin *load(const char *schema, char **err)
{
	struct ks_lua_host h = host();
	char *src = ks_xasprintf(HEAD "config_schema = %s," TAIL, schema);
	struct ks_plugin *p = ks_plugin_load(&h, "p.lua", src, strlen(src), err);

	free(src);
	return p;
}

/* ctx.config of p as JSON text (free it). */
static char *config_of(struct ks_plugin *p)
{
	lua_State *L = ks_lua_state(p->lua);
	const char *why = NULL;
	cJSON *j;
	char *text;

	lua_rawgeti(L, LUA_REGISTRYINDEX, p->config_ref);
	j = ks_lua_to_json(L, -1, &why);
	lua_pop(L, 1);
	text = j ? cJSON_PrintUnformatted(j) : ks_xstrdup(why);
	cJSON_Delete(j);
	return text;
}

TEST(malformed_schemas_are_refused_naming_the_field)
{
	static const struct {
		const char *schema, *want;
	} cases[] = {
		{ "5", "config_schema must be a table" },
		{ "{ 'x' }", "config_schema's keys must be setting names" },
		{ "{ timeout = 30 }", "config_schema.timeout must be a table" },
		{ "{ timeout = {} }",
		  "config_schema.timeout.type must be one of string, number, boolean" },
		{ "{ timeout = { type = 'int' } }", "config_schema.timeout.type must be one of" },
		{ "{ timeout = { type = 'number', default = '30' } }",
		  "config_schema.timeout.default must be a number" },
		{ "{ timeout = { type = 'number', required = 'yes' } }",
		  "config_schema.timeout.required must be a boolean" },
		{ "{ timeout = { type = 'number', descr = 'x' } }",
		  "config_schema.timeout.descr is not a schema field" },
		{ "{ mode = { type = 'string', enum = {} } }",
		  "config_schema.mode.enum must be a non-empty list" },
		{ "{ mode = { type = 'string', enum = { 'a', 2 } } }",
		  "config_schema.mode.enum[2] must be a string" },
		{ "{ mode = { type = 'string', enum = { 'a' }, default = 'b' } }",
		  "config_schema.mode.default must be one of its enum" },
		{ "{ mode = { type = 'string', description = 7 } }",
		  "config_schema.mode.description must be a string" },
	};
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		char *err = NULL;
		struct ks_plugin *p = load(cases[i].schema, &err);
		bool ok = !p && err && strstr(err, cases[i].want) && strstr(err, "plugin p.lua: ");
		if (!ok) {
			printf("  case %zu: %s\n", i, err ? err : "(accepted)");
			ks_plugin_free(p, "test");
			free(err);
			FAIL_("case %zu not refused with '%s'", i, cases[i].want);
		}
		free(err);
	}
}

TEST(defaults_fill_ctx_config_and_settings_override_them)
{
	char *err = NULL, *text;
	struct ks_plugin *p = load("{ timeout = { type = 'number', default = 30 }, "
				   "mode = { type = 'string', enum = { 'fast', 'safe' } }, "
				   "debug = { type = 'boolean', default = false } }",
				   &err);
	cJSON *settings;

	ASSERT(p != NULL);
	text = config_of(p);
	/* Key order follows the Lua table's hash order: check the keys, not the text. */
	ASSERT(strstr(text, "\"timeout\":30") && strstr(text, "\"debug\":false") &&
	       !strstr(text, "\"mode\""));
	free(text);
	settings = cJSON_Parse("{\"timeout\": 5, \"mode\": \"safe\"}");
	ASSERT_EQ(ks_plugin_configure(p, settings, &err), 0);
	cJSON_Delete(settings);
	text = config_of(p);
	ASSERT(strstr(text, "\"timeout\":5") && strstr(text, "\"mode\":\"safe\"") &&
	       strstr(text, "\"debug\":false"));
	free(text);
	ks_plugin_free(p, "test");
	p = load("nil", &err); /* no schema: ctx.config is an empty table */
	ASSERT(p != NULL);
	text = config_of(p);
	ASSERT(strcmp(text, "{}") == 0 || strcmp(text, "[]") == 0);
	free(text);
	ks_plugin_free(p, "test");
}

TEST(bad_settings_are_refused_naming_the_setting)
{
	static const struct {
		const char *settings, *want;
	} cases[] = {
		{ "{\"timeout\": \"soon\", \"mode\": \"fast\"}",
		  "setting 'timeout' must be a number" },
		{ "{\"mode\": \"slow\"}", "setting 'mode' must be one of fast, safe" },
		{ "{\"colour\": \"red\", \"mode\": \"fast\"}",
		  "setting 'colour' is not in the plugin's config_schema" },
		{ "{\"timeout\": 1}", "setting 'mode' is required" },
		{ "[1]", "the settings must be a mapping" },
	};
	char *err = NULL, *text;
	struct ks_plugin *p = load("{ timeout = { type = 'number', default = 30 }, "
				   "mode = { type = 'string', enum = { 'fast', 'safe' }, "
				   "required = true } }",
				   &err);
	size_t i;

	ASSERT(p != NULL);
	for (i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		cJSON *s = cJSON_Parse(cases[i].settings);
		int rc = ks_plugin_configure(p, s, &err);
		bool ok = rc != 0 && err && strstr(err, cases[i].want);
		cJSON_Delete(s);
		if (!ok) {
			printf("  case %zu: %s\n", i, err ? err : "(accepted)");
			free(err);
			ks_plugin_free(p, "test");
			FAIL_("case %zu not refused with '%s'", i, cases[i].want);
		}
		free(err);
		err = NULL;
	}
	text = config_of(p); /* unchanged by the refusals */
	ASSERT_STR(text, "{\"timeout\":30}");
	free(text);
	ks_plugin_free(p, "test");
}

static const char widget_src[] =
	HEAD "config_schema = { timeout = { type = 'number', default = 30 } }," TAIL;

TEST(a_candidate_s_settings_file_is_checked_and_named)
{
	struct ks_lua_host h = host();
	struct ks_candidate c = { .name = "widget.lua",
				  .src = widget_src,
				  .len = sizeof(widget_src) - 1 };
	struct ks_plugin *p;
	char *err = NULL, *text;

	c.settings = "timeout: 7\n";
	c.settings_len = strlen(c.settings);
	p = ks_candidate_load(&h, &c, &err);
	ASSERT(p != NULL);
	text = config_of(p);
	ASSERT_STR(text, "{\"timeout\":7}");
	free(text);
	ks_plugin_free(p, "test");
	c.settings = "timeout: soon\n";
	c.settings_len = strlen(c.settings);
	ASSERT(ks_candidate_load(&h, &c, &err) == NULL);
	ASSERT_STR(err,
		   "plugin widget.lua: widget.config.yaml: setting 'timeout' must be a number");
	free(err);
}

static void put(const char *dir, const char *name, const char *text)
{
	char *path = ks_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	free(path);
}

/* DIR/fixtures/NAME/ with object.yaml and expected.yaml. */
static void fixture(const char *dir, const char *name, const char *expected)
{
	char *f = ks_xasprintf("%s/fixtures/%s", dir, name);

	mkdir(f, 0755);
	put(f, "object.yaml",
	    "{apiVersion: g/v1, kind: K, metadata: {name: a, namespace: n, generation: 1}}\n");
	put(f, "expected.yaml", expected);
	free(f);
}

TEST(a_candidate_failing_a_fixture_is_refused_naming_it)
{
	struct ks_lua_host h = host();
	struct ks_candidate c = { .name = "widget.lua",
				  .src = widget_src,
				  .len = sizeof(widget_src) - 1 };
	char tmpl[] = "/tmp/ks-test-schema.XXXXXX", *dir, *sub;
	struct ks_plugin *p;
	char *err = NULL;

	ASSERT(mkdtemp(tmpl) != NULL);
	dir = ks_xasprintf("%s/widget", tmpl);
	sub = ks_xasprintf("%s/fixtures", dir);
	mkdir(dir, 0755);
	mkdir(sub, 0755);
	fixture(dir, "a-default", "status: {t: 30}\n");
	p = ks_candidate_load(&h, &c, &err);
	ASSERT(p != NULL);
	ks_plugin_free(p, "test");
	/* What the vetter's child runs (cmd/vet.c) on the candidate's text. */
	if (ks_fixture_vet(dir, c.name, c.src, c.len, h.stdlib_dir, &err) != 0)
		printf("  %s\n", err);
	ASSERT(err == NULL);
	put(dir, "config.yaml", "timeout: 9\n"); /* the fixtures' own settings */
	fixture(dir, "a-default", "status: {t: 9}\n");
	fixture(dir, "b-wrong", "status: {t: 10}\n");
	ASSERT(ks_fixture_vet(dir, c.name, c.src, c.len, h.stdlib_dir, &err) == -EINVAL);
	ASSERT_STR(err, "fixture widget/b-wrong failed: status.t: expected 10, got 9");
	free(err);
	free(sub);
	sub = ks_xasprintf("rm -rf %s", tmpl);
	ASSERT_EQ(system(sub), 0);
	free(sub);
	free(dir);
}

/* The plugin table's scope (its kind's, and a watched kind's): "Namespaced" or "Cluster", as
 * the CRD says; anything else is refused naming the field, and the kind keeps its scope. */
TEST(a_plugin_s_scope_is_checked_and_named)
{
	static const struct {
		const char *fields, *want;
	} bad[] = {
		{ "scope = 'Global',", "field 'scope' must be \"Namespaced\" or \"Cluster\"" },
		{ "scope = 'cluster',", "field 'scope'" },
		{ "scope = 5,", "field 'scope'" },
		{ "watches = { { group = 'g', version = 'v1', kind = 'W', scope = true, "
		  "map = function() end } },",
		  "field 'watches[1].scope'" },
	};
	struct ks_lua_host h = host();
	struct ks_plugin *p;
	char *src, *err = NULL;
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(bad); i++) {
		src = ks_xasprintf(HEAD "%s" TAIL, bad[i].fields);
		err = NULL;
		p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);
		free(src);
		if (p || !err || !strstr(err, bad[i].want) || !strstr(err, "p.lua")) {
			printf("  case %zu: %s\n", i, err ? err : "(accepted)");
			if (p)
				ks_plugin_free(p, "test");
			free(err);
			FAIL_("case %zu not refused with '%s'", i, bad[i].want);
		}
		free(err);
	}
	src = ks_xasprintf(HEAD "scope = 'Cluster', watches = { { group = 'g', version = 'v1', "
				"kind = 'W', scope = 'Cluster', map = function() end }, { group = "
				"'g', version = 'v1', kind = 'X', map = function() end } }," TAIL);
	p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);
	free(src);
	if (!p)
		printf("  %s\n", err);
	ASSERT(p != NULL);
	ASSERT(!p->self.res.namespaced);
	ASSERT_EQ(p->nwatches, 2);
	ASSERT(!p->watches[0].res.namespaced);
	ASSERT(p->watches[1].res.namespaced); /* unset: namespaced */
	ks_plugin_free(p, "test");
	src = ks_xasprintf(HEAD "scope = 'Namespaced'," TAIL);
	p = ks_plugin_load(&h, "p.lua", src, strlen(src), &err);
	free(src);
	ASSERT(p != NULL);
	ASSERT(p->self.res.namespaced);
	ks_plugin_free(p, "test");
}

int main(void)
{
	uv_loop_init(&loop);
	RUN(malformed_schemas_are_refused_naming_the_field);
	RUN(defaults_fill_ctx_config_and_settings_override_them);
	RUN(bad_settings_are_refused_naming_the_setting);
	RUN(a_candidate_s_settings_file_is_checked_and_named);
	RUN(a_candidate_failing_a_fixture_is_refused_naming_it);
	RUN(a_plugin_s_scope_is_checked_and_named);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_MAIN();
}
