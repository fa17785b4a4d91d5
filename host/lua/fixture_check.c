/*
 * fixture_check.c: expected.yaml against what a fixture's reconcile did. Every field
 * of expected.yaml is a subset of what happened: mappings need only the keys they name
 * (null: the key must be absent), lists match item by item, scalars by value (true
 * matches "True", 1 matches "1"), and messages by substring.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/fixture_impl.h"

static const char *const known[] = {
	"error",  "terminal",	"reason",	  "requeue_after",     "backoff",
	"status", "conditions", "status_written", "finalizer_removed", "kube",
	"events",
};

void ks_fixture_diag(struct ks_fixture *x, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	line = ks_xvasprintf(fmt, ap);
	va_end(ap);
	ks_buf_printf(&x->diag, "%s\n", line);
	free(line);
}

/* A value in one line, cut at 200 characters, into a fresh string. */
static char *show(const cJSON *v)
{
	char *t = v ? cJSON_PrintUnformatted(v) : ks_xstrdup("nothing");
	char *out;

	if (strlen(t) <= 200)
		return t;
	out = ks_xasprintf("%.200s...", t);
	free(t);
	return out;
}

static bool is_scalar(const cJSON *v)
{
	return v && !cJSON_IsObject(v) && !cJSON_IsArray(v);
}

/* A scalar as text: strings as they are, numbers as %g, true/false/null. */
static void scalar_text(const cJSON *v, char *out, size_t cap)
{
	if (cJSON_IsString(v))
		snprintf(out, cap, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(out, cap, "%.17g", v->valuedouble);
	else if (cJSON_IsBool(v))
		snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else
		snprintf(out, cap, "null");
}

static bool same_scalar(const cJSON *want, const cJSON *got)
{
	char a[512], b[512];

	if (!is_scalar(got))
		return false;
	if (cJSON_IsNumber(want) && cJSON_IsNumber(got))
		return want->valuedouble == got->valuedouble;
	scalar_text(want, a, sizeof(a));
	scalar_text(got, b, sizeof(b));
	if (cJSON_IsBool(want) || cJSON_IsBool(got))
		return strcasecmp(a, b) == 0;
	return strcmp(a, b) == 0;
}

static void differ(struct ks_fixture *x, const char *path, const cJSON *want, const cJSON *got)
{
	char *w = show(want), *g = show(got);

	ks_fixture_diag(x, "%s: expected %s, got %s", path, w, g);
	free(w);
	free(g);
}

bool ks_fixture_subset(struct ks_fixture *x, const char *path, const cJSON *want, const cJSON *got)
{
	const cJSON *w, *g;
	bool ok = true;
	char *sub;
	int i = 0;

	if (cJSON_IsNull(want)) {
		if (got && !cJSON_IsNull(got)) {
			differ(x, path, want, got);
			return false;
		}
		return true;
	}
	if (cJSON_IsObject(want) && cJSON_IsObject(got)) {
		cJSON_ArrayForEach(w, want)
		{
			sub = ks_xasprintf("%s.%s", path, w->string);
			ok &= ks_fixture_subset(x, sub, w, cJSON_GetObjectItem(got, w->string));
			free(sub);
		}
		return ok;
	}
	if (cJSON_IsArray(want) && cJSON_IsArray(got)) {
		if (cJSON_GetArraySize(want) != cJSON_GetArraySize(got)) {
			ks_fixture_diag(x, "%s: expected %d items, got %d", path,
					cJSON_GetArraySize(want), cJSON_GetArraySize(got));
			differ(x, path, want, got);
			return false;
		}
		g = got->child;
		cJSON_ArrayForEach(w, want)
		{
			sub = ks_xasprintf("%s[%d]", path, i++);
			ok &= ks_fixture_subset(x, sub, w, g);
			free(sub);
			g = g->next;
		}
		return ok;
	}
	if (is_scalar(want) && same_scalar(want, got))
		return true;
	differ(x, path, want, got);
	return false;
}

/* A string field of expected that must be contained in got's text. */
static void contains(struct ks_fixture *x, const char *what, const cJSON *want, const char *got)
{
	if (!want)
		return;
	if (!cJSON_IsString(want)) {
		ks_fixture_diag(x, "expected.yaml: '%s' must be a string (a substring)", what);
		return;
	}
	if (!got || !strstr(got, want->valuestring))
		ks_fixture_diag(x, "%s: expected one containing \"%s\", got %s%s%s", what,
				want->valuestring, got ? "\"" : "", got ? got : "none",
				got ? "\"" : "");
}

static void check_number(struct ks_fixture *x, const char *what, const cJSON *want, double got)
{
	if (!want)
		return;
	if (!cJSON_IsNumber(want))
		ks_fixture_diag(x, "expected.yaml: '%s' must be a number", what);
	else if (want->valuedouble != got)
		ks_fixture_diag(x, "%s: expected %g, got %g", what, want->valuedouble, got);
}

/* want against the string got (NULL: none). */
static void check_str(struct ks_fixture *x, const char *what, const cJSON *want, const char *got)
{
	cJSON *g = got ? cJSON_CreateString(got) : NULL;

	if (want)
		ks_fixture_subset(x, what, want, g);
	cJSON_Delete(g);
}

static void check_bool(struct ks_fixture *x, const char *what, const cJSON *want, bool got)
{
	if (want && (!cJSON_IsBool(want) || cJSON_IsTrue(want) != got))
		ks_fixture_diag(x, "%s: expected %s, got %s", what,
				cJSON_IsTrue(want) ? "true" : "false", got ? "true" : "false");
}

/* The outcome: error (substring), terminal, reason, requeue_after, backoff. */
static void check_outcome(struct ks_fixture *x, const cJSON *e)
{
	const cJSON *err = cJSON_GetObjectItem(e, "error");

	if (!err && x->error)
		ks_fixture_diag(x, "the reconcile failed%s: %s", x->terminal ? " for good" : "",
				x->error);
	else if (err && !x->error)
		ks_fixture_diag(x, "the reconcile succeeded; expected it to fail with \"%s\"",
				cJSON_IsString(err) ? err->valuestring : "?");
	else
		contains(x, "error", err, x->error);
	check_bool(x, "terminal", cJSON_GetObjectItem(e, "terminal"), x->terminal);
	check_str(x, "reason", cJSON_GetObjectItem(e, "reason"), x->reason);
	check_number(x, "requeue_after", cJSON_GetObjectItem(e, "requeue_after"), x->requeue_after);
	check_number(x, "backoff", cJSON_GetObjectItem(e, "backoff"), x->backoff);
	check_bool(x, "status_written", cJSON_GetObjectItem(e, "status_written"),
		   x->status_written);
	check_bool(x, "finalizer_removed", cJSON_GetObjectItem(e, "finalizer_removed"),
		   x->finalizer_removed);
}

static const cJSON *find_cond(const cJSON *conds, const char *type)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, conds)
	{
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

/* Each expected condition by type: status and reason by value, message by substring. */
static void check_conditions(struct ks_fixture *x, const cJSON *want)
{
	const cJSON *conds = cJSON_GetObjectItem(x->status, "conditions"), *w, *got, *f;
	const char *type;
	char path[160];

	cJSON_ArrayForEach(w, want)
	{
		type = cJSON_GetStringValue(cJSON_GetObjectItem(w, "type"));
		if (!type) {
			ks_fixture_diag(x, "expected.yaml: each condition needs a 'type'");
			continue;
		}
		got = find_cond(conds, type);
		if (!got) {
			ks_fixture_diag(x, "conditions: no condition of type %s", type);
			continue;
		}
		cJSON_ArrayForEach(f, w)
		{
			snprintf(path, sizeof(path), "conditions[%s].%s", type, f->string);
			if (strcmp(f->string, "message") == 0)
				contains(x, path, f,
					 cJSON_GetStringValue(cJSON_GetObjectItem(got, "message")));
			else if (strcmp(f->string, "type") != 0)
				ks_fixture_subset(x, path, f, cJSON_GetObjectItem(got, f->string));
		}
	}
}

/* The writes in order: verb, kind or resource, namespace, name, subresource, patchType
 * by value; body as a subset. */
static void check_writes(struct ks_fixture *x, const cJSON *want)
{
	int nw = cJSON_GetArraySize(want), ng = cJSON_GetArraySize(x->writes), i;
	const cJSON *w, *g, *f;
	char path[64], plural[128];
	size_t mark = x->diag.len;

	for (i = 0; i < KS_MAX(nw, ng); i++) {
		w = cJSON_GetArrayItem(want, i);
		g = cJSON_GetArrayItem(x->writes, i);
		snprintf(path, sizeof(path), "kube[%d]", i);
		if (!g || !w) {
			char *t = show(w ? w : g);
			ks_fixture_diag(x, "%s: %s write %s", path, w ? "missing" : "unexpected",
					t);
			free(t);
			continue;
		}
		cJSON_ArrayForEach(f, w)
		{
			char sub[96];

			snprintf(sub, sizeof(sub), "%s.%s", path, f->string);
			if (strcmp(f->string, "kind") == 0 && cJSON_IsString(f)) {
				ks_lua_kube_plural(f->valuestring, plural, sizeof(plural));
				cJSON *pw = cJSON_CreateString(plural);

				ks_fixture_subset(x, sub, pw, cJSON_GetObjectItem(g, "resource"));
				cJSON_Delete(pw);
			} else {
				ks_fixture_subset(x, sub, f, cJSON_GetObjectItem(g, f->string));
			}
		}
	}
	if (x->diag.len != mark) {
		char *t = show(x->writes);
		ks_fixture_diag(x, "the writes: %s", t);
		free(t);
	}
}

static void check_events(struct ks_fixture *x, const cJSON *want)
{
	int nw = cJSON_GetArraySize(want), ng = cJSON_GetArraySize(x->events), i;
	const cJSON *w, *g;
	char path[64];

	for (i = 0; i < KS_MAX(nw, ng); i++) {
		w = cJSON_GetArrayItem(want, i);
		g = cJSON_GetArrayItem(x->events, i);
		if (!w || !g) {
			char *t = show(w ? w : g);
			ks_fixture_diag(x, "events[%d]: %s event %s", i,
					w ? "missing" : "unexpected", t);
			free(t);
			continue;
		}
		snprintf(path, sizeof(path), "events[%d].type", i);
		ks_fixture_subset(x, path, cJSON_GetObjectItem(w, "type"),
				  cJSON_GetObjectItem(g, "type"));
		snprintf(path, sizeof(path), "events[%d].reason", i);
		ks_fixture_subset(x, path, cJSON_GetObjectItem(w, "reason"),
				  cJSON_GetObjectItem(g, "reason"));
		snprintf(path, sizeof(path), "events[%d].message", i);
		contains(x, path, cJSON_GetObjectItem(w, "message"),
			 cJSON_GetStringValue(cJSON_GetObjectItem(g, "message")));
	}
}

void ks_fixture_check(struct ks_fixture *x, const cJSON *e)
{
	const cJSON *f, *want;
	size_t i, mark;

	cJSON_ArrayForEach(f, e)
	{
		for (i = 0; i < KS_ARRAY_SIZE(known) && strcmp(f->string, known[i]); i++)
			;
		if (i == KS_ARRAY_SIZE(known))
			ks_fixture_diag(x, "expected.yaml: unknown field '%s'", f->string);
	}
	check_outcome(x, e);
	mark = x->diag.len;
	want = cJSON_GetObjectItem(e, "status");
	if (want)
		ks_fixture_subset(x, "status", want, x->status);
	check_conditions(x, cJSON_GetObjectItem(e, "conditions"));
	if (x->diag.len != mark) {
		char *t = cJSON_PrintUnformatted(x->status);
		ks_fixture_diag(x, "the status%s: %s",
				x->status_written ? " written" : " (unchanged)", t);
		free(t);
	}
	check_writes(x, cJSON_GetObjectItem(e, "kube"));
	want = cJSON_GetObjectItem(e, "events");
	if (want)
		check_events(x, want);
}
