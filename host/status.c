/*
 * status.c: computing the next .status from a reconcile's outcome.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "ks.h"
#include "status.h"

void ks_status_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *find_cond(const cJSON *conds, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, conds)
	{
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
		if (t && strcmp(t, type) == 0)
			return (cJSON *)c;
	}
	return NULL;
}

static const char *str_of(const cJSON *o, const char *k, const char *def)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));

	return v ? v : def;
}

/* Set condition want (type, status, reason, message) in conds, keeping the transition
 * time of the previous one (in old) while its status is the same. */
static void set_cond(cJSON *conds, const cJSON *old, const cJSON *want, long long gen,
		     const char *now)
{
	const char *type = str_of(want, "type", NULL), *status = str_of(want, "status", "Unknown");
	const cJSON *prev = type ? find_cond(old, type) : NULL;
	cJSON *c, *have;
	const char *since = now;

	if (!type)
		return;
	if (prev && strcmp(str_of(prev, "status", ""), status) == 0)
		since = str_of(prev, "lastTransitionTime", now);
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", status);
	cJSON_AddStringToObject(c, "reason", str_of(want, "reason", status));
	/* An empty message is left out rather than sent as "". */
	if (*str_of(want, "message", ""))
		cJSON_AddStringToObject(c, "message", str_of(want, "message", ""));
	cJSON_AddStringToObject(c, "lastTransitionTime", since);
	if (gen > 0)
		cJSON_AddNumberToObject(c, "observedGeneration", (double)gen);
	have = find_cond(conds, type);
	if (have)
		cJSON_ReplaceItemViaPointer(conds, have, c);
	else
		cJSON_AddItemToArray(conds, c);
}

static cJSON *cond(const char *type, const char *status, const char *reason, const char *msg)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", status);
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", msg);
	return c;
}

/* The host's conditions for a failure: Progressing says what failed; Available is
 * set False only while it is not True (a resource that exists stays available). A
 * condition the plugin reported itself with its failure (given) is the plugin's: the
 * host sets neither over it. */
static void failure_conds(cJSON *conds, const cJSON *old, const struct ks_outcome *res,
			  const cJSON *given, long long gen, const char *now)
{
	const char *reason = res->reason ? res->reason : res->terminal ? "Terminal" : "Transient";
	const cJSON *avail = find_cond(old, "Available");
	char msg[1024];
	cJSON *c;

	snprintf(msg, sizeof(msg), "%s%s", res->error, res->terminal ? "" : " (will retry)");
	if (!find_cond(given, "Progressing")) {
		c = cond("Progressing", res->terminal ? "False" : "True", reason, msg);
		set_cond(conds, old, c, gen, now);
		cJSON_Delete(c);
	}
	if (!find_cond(given, "Available") &&
	    (!avail || strcmp(str_of(avail, "status", ""), "True") != 0)) {
		c = cond("Available", "False", reason, res->error);
		set_cond(conds, old, c, gen, now);
		cJSON_Delete(c);
	}
}

/* The host's own failure conditions (reasons it set) are cleared by the next success
 * when the plugin does not report that condition itself: no stale "will retry". */
static void clear_failure(cJSON *conds, const cJSON *old, const cJSON *given, long long gen,
			  const char *now)
{
	static const char *const types[] = { "Progressing", "Available" };
	static const char *const to[] = { "False", "True" };
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(types); i++) {
		const cJSON *prev = find_cond(old, types[i]);
		const char *reason = prev ? str_of(prev, "reason", "") : "";
		cJSON *c;

		if (!prev || find_cond(given, types[i]) ||
		    (strcmp(reason, "Transient") != 0 && strcmp(reason, "Terminal") != 0))
			continue;
		c = cond(types[i], to[i], "Success", "reconciled");
		set_cond(conds, old, c, gen, now);
		cJSON_Delete(c);
	}
}

cJSON *ks_status_next(const cJSON *obj, const struct ks_outcome *res, const char *now)
{
	const cJSON *old = cJSON_GetObjectItem(obj, "status"), *f, *w;
	const cJSON *old_conds = cJSON_GetObjectItem(old, "conditions");
	long long gen = ks_json_int(obj, "metadata.generation", 0);
	cJSON *next = old ? cJSON_Duplicate(old, 1) : cJSON_CreateObject(), *conds;

	if (res->status) {
		cJSON_ArrayForEach(f, res->status)
		{
			if (strcmp(f->string, "conditions") == 0 ||
			    strcmp(f->string, "observedGeneration") == 0)
				continue;
			cJSON_DeleteItemFromObject(next, f->string);
			cJSON_AddItemToObject(next, f->string, cJSON_Duplicate(f, 1));
		}
	}
	conds = cJSON_GetObjectItem(next, "conditions");
	if (!cJSON_IsArray(conds)) {
		cJSON_DeleteItemFromObject(next, "conditions");
		conds = cJSON_AddArrayToObject(next, "conditions");
	}
	/* The plugin's own conditions, failed or not; on a failure the host's after them. */
	cJSON_ArrayForEach(w, res->conditions)
	{
		set_cond(conds, old_conds, w, gen, now);
	}
	if (res->error)
		failure_conds(conds, old_conds, res, res->conditions, gen, now);
	else
		clear_failure(conds, old_conds, res->conditions, gen, now);
	if (cJSON_GetArraySize(conds) == 0)
		cJSON_DeleteItemFromObject(next, "conditions");
	if (gen > 0) {
		cJSON_DeleteItemFromObject(next, "observedGeneration");
		cJSON_AddNumberToObject(next, "observedGeneration", (double)gen);
	}
	if (old ? ks_json_equal(old, next) : cJSON_GetArraySize(next) == 0) {
		cJSON_Delete(next);
		return NULL;
	}
	return next;
}

cJSON *ks_status_patch(const cJSON *obj, cJSON *next)
{
	const cJSON *old = cJSON_GetObjectItem(obj, "status"), *f;
	cJSON *patch = cJSON_CreateObject();

	cJSON_ArrayForEach(f, old)
	{
		if (!cJSON_GetObjectItem(next, f->string))
			cJSON_AddNullToObject(next, f->string);
	}
	cJSON_AddItemToObject(patch, "status", next);
	return patch;
}
