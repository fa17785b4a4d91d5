/* fixture.c: a fixture request run against a policy, offline (fixture.h). */
#include "admission/fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission/review.h"
#include "ks.h"

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

char *ks_policy_fixture_run(struct ks_policy *p, cJSON *fx, char **outcome)
{
	cJSON *req = cJSON_GetObjectItemCaseSensitive(fx, "request"), *k, *o;
	struct fixture_env fe = { cJSON_GetObjectItemCaseSensitive(fx, "cache") };
	struct ks_policy_env env = { fixture_list, &fe };
	struct ks_review_out mut, val;
	struct ks_policy_req r = { 0 };
	char *problem, *patch = NULL;

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
	*outcome = ks_xasprintf("%s%s%s",
				!val.allowed ? "denied: "
				: patch	     ? "mutated: "
					     : "admitted",
				!val.allowed ? val.message
				: patch	     ? patch
					     : "",
				val.warnings ? " (with warnings)" : "");
	free(patch);
	ks_review_out_deinit(&mut);
	ks_review_out_deinit(&val);
	return problem;
}

char *ks_policy_fixtures_check(struct ks_policy *p, const cJSON *fixtures, double seconds)
{
	uint64_t t0 = ks_now_ns();
	const cJSON *f;
	char *problem = NULL, *outcome = NULL;
	int i = 0;

	cJSON_ArrayForEach(f, fixtures)
	{
		cJSON *fx = cJSON_Duplicate(f, 1);
		char index[24];

		snprintf(index, sizeof(index), "%d", i++);
		if (!cJSON_IsObject(fx) || !cJSON_IsObject(cJSON_GetObjectItem(fx, "request")))
			problem = ks_xstrdup("not a fixture (request, expect, ...)");
		else
			problem = ks_policy_fixture_run(p, fx, &outcome);
		cJSON_Delete(fx);
		free(outcome);
		outcome = NULL;
		if (problem) {
			char *e = ks_xasprintf("fixture %s: %s", f->string ? f->string : index,
					       problem);

			free(problem);
			return e;
		}
		if ((double)(ks_now_ns() - t0) / 1e9 > seconds)
			return ks_xasprintf("the fixtures took over %.1f s (the host's loop "
					    "waits for them); %d of %d ran",
					    seconds, i, cJSON_GetArraySize(fixtures));
	}
	return NULL;
}
