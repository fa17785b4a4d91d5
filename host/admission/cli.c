/* cli.c: `kupenstack policy test DIR`: policies against fixture requests, offline. */
#include "admission/cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission/review.h"
#include "ks.h"
#include "yaml.h"

struct fixture_env {
	const cJSON *cache;
};

static cJSON *fixture_list(void *data, const char *res, const char *ns, const char **err)
{
	const struct fixture_env *f = data;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(f->cache, res), *o;
	cJSON *out = cJSON_CreateArray();

	cJSON_ArrayForEach(o, items)
	{
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "namespace");

		if (!ns || (cJSON_IsString(n) && strcmp(n->valuestring, ns) == 0))
			cJSON_AddItemToArray(out, cJSON_Duplicate(o, 1));
	}
	(void)err;
	return out;
}

static cJSON *load(const char *path, char **err)
{
	size_t len;
	int rc;
	char *text = ks_read_file(path, &len, &rc);
	cJSON *doc;

	if (!text) {
		*err = ks_xasprintf("cannot read %s", path);
		return NULL;
	}
	doc = ks_yaml_parse(text, len, err);
	free(text);
	return doc;
}

/* Whether every field of want is in have, recursively (arrays compared whole). */
static bool subset(const cJSON *want, const cJSON *have)
{
	const cJSON *w;

	if (!cJSON_IsObject(want))
		return have && cJSON_Compare(want, have, true);
	if (!cJSON_IsObject(have))
		return false;
	cJSON_ArrayForEach(w, want)
	{
		if (!subset(w, cJSON_GetObjectItemCaseSensitive(have, w->string)))
			return false;
	}
	return true;
}

/* The problem with out against expect, or NULL when it is as expected. */
static char *compare(const cJSON *expect, const struct ks_review_out *out, const cJSON *obj)
{
	const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(expect, "allowed");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(expect, "message");
	const cJSON *warn = cJSON_GetObjectItemCaseSensitive(expect, "warnings");
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(expect, "object");

	if (cJSON_IsBool(allowed) && cJSON_IsTrue(allowed) != out->allowed)
		return ks_xasprintf(
			"expected %s, got %s%s", out->allowed ? "a denial" : "admitted",
			out->allowed ? "admitted" : "denied: ", out->allowed ? "" : out->message);
	if (cJSON_IsString(msg) && (!out->message || strcmp(msg->valuestring, out->message)))
		return ks_xasprintf("expected the message '%s', got '%s'", msg->valuestring,
				    out->message ? out->message : "(none)");
	if (warn && !(out->warnings ? cJSON_Compare(warn, out->warnings, true)
				    : cJSON_GetArraySize(warn) == 0)) {
		char *got = out->warnings ? cJSON_PrintUnformatted(out->warnings) : NULL;
		char *e = ks_xasprintf("expected the warnings given, got %s", got ? got : "none");

		free(got);
		return e;
	}
	if (want && !subset(want, obj)) {
		char *got = cJSON_PrintUnformatted(obj);
		char *e = ks_xasprintf("the mutated object lacks expect.object's fields: %s", got);

		free(got);
		return e;
	}
	return NULL;
}

/* Run one fixture: mutate, then validate the mutated object. Returns 0 if as expected. */
static int run_fixture(struct ks_policy *p, const char *name, cJSON *fx)
{
	cJSON *req = cJSON_GetObjectItemCaseSensitive(fx, "request"), *k, *o;
	struct fixture_env fe = { cJSON_GetObjectItemCaseSensitive(fx, "cache") };
	struct ks_policy_env env = { fixture_list, &fe };
	struct ks_review_out mut, val;
	struct ks_policy_req r = { 0 };
	char *problem, *patch = NULL;
	const char *op;
	int rc;

	r.operation = (o = cJSON_GetObjectItem(req, "operation")) && cJSON_IsString(o)
			      ? o->valuestring
			      : "CREATE";
	r.ns = (o = cJSON_GetObjectItem(req, "namespace")) && cJSON_IsString(o) ? o->valuestring
										: "";
	r.object = cJSON_GetObjectItem(req, "object");
	r.old = cJSON_GetObjectItem(req, "oldObject");
	r.user = cJSON_GetObjectItem(req, "userInfo");
	r.namespace_obj = cJSON_GetObjectItem(fx, "namespace");
	k = cJSON_GetObjectItem(req, "kind");
	r.group = (o = cJSON_GetObjectItem(k, "group")) && cJSON_IsString(o) ? o->valuestring
									     : "kupenstack.io";
	r.kind = (o = cJSON_GetObjectItem(k, "kind")) && cJSON_IsString(o) ? o->valuestring
		 : (o = cJSON_GetObjectItem(r.object ? r.object : (cJSON *)r.old, "kind")) &&
				 cJSON_IsString(o)
			 ? o->valuestring
			 : "";
	o = cJSON_GetObjectItem(
		cJSON_GetObjectItem(r.object ? r.object : (cJSON *)r.old, "metadata"), "name");
	r.name = cJSON_IsString(o) ? o->valuestring : "";
	ks_review_run(&p, 1, &r, &env, true, &mut);
	if (mut.allowed)
		ks_review_run(&p, 1, &r, &env, false, &val);
	else
		val = mut, memset(&mut, 0, sizeof(mut));
	problem = compare(cJSON_GetObjectItem(fx, "expect"), &val, r.object);
	if (mut.patch && cJSON_GetArraySize(mut.patch) > 0)
		patch = cJSON_PrintUnformatted(mut.patch);
	op = !val.allowed ? "denied: " : patch ? "mutated: " : "admitted";
	printf("%s - %s: %s%s%s\n", problem ? "not ok" : "ok", name, op,
	       !val.allowed ? val.message
	       : patch	    ? patch
			    : "",
	       val.warnings ? " (with warnings)" : "");
	if (problem)
		printf("#   %s\n", problem);
	rc = problem ? 1 : 0;
	free(problem);
	free(patch);
	ks_review_out_deinit(&mut);
	ks_review_out_deinit(&val);
	return rc;
}

static int test_dir(const char *dir)
{
	char *path = ks_xasprintf("%s/policy.yaml", dir), *err = NULL;
	cJSON *cr = load(path, &err), *fx;
	struct ks_policy *p = NULL;
	struct dirent **names = NULL;
	int n = 0, passed = 0, failed = 0;
	uv_loop_t *loop = uv_default_loop();

	free(path);
	if (cr)
		p = ks_policy_new(loop, cr, &err);
	cJSON_Delete(cr);
	if (!p) {
		printf("not ok - %s/policy.yaml: %s\n1 passed, 1 failed\n", dir, err);
		free(err);
		return 1;
	}
	path = ks_xasprintf("%s/fixtures", dir);
	n = scandir(path, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char *f;
		size_t l = strlen(names[i]->d_name);

		if (l > 5 && strcmp(names[i]->d_name + l - 5, ".yaml") == 0) {
			f = ks_xasprintf("%s/%s", path, names[i]->d_name);
			fx = load(f, &err);
			if (!fx) {
				printf("not ok - %s: %s\n", names[i]->d_name, err);
				free(err);
				err = NULL;
				failed++;
			} else if (run_fixture(p, names[i]->d_name, fx) == 0) {
				passed++;
			} else {
				failed++;
			}
			cJSON_Delete(fx);
			free(f);
		}
		free(names[i]);
	}
	free(names);
	if (n <= 0) {
		printf("not ok - %s: no fixtures (*.yaml)\n", path);
		failed++;
	}
	free(path);
	ks_policy_free(p);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

int ks_policy_cli(int argc, char **argv)
{
	int rc = 0;

	if (argc < 3 || strcmp(argv[1], "test") != 0) {
		fprintf(stderr,
			"usage: kupenstack policy test DIR...\n"
			"  DIR holds policy.yaml and fixtures/*.yaml (host/admission/cli.h)\n");
		return 2;
	}
	for (int i = 2; i < argc; i++)
		rc |= test_dir(argv[i]);
	return rc;
}
