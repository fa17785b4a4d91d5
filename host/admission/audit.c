/* audit.c: existing objects checked against every policy (on policy change and every
 * --admission-audit-seconds), as Gatekeeper's audit does: the violations go to the
 * policy's status (a count and the first few) and to PolicyViolation Events on the
 * objects; nothing is changed. */
#include "admission/impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ks.h"
#include "log.h"
#include "lua/bind.h"

#define MAX_OBJECTS 1000 /* per policy and kind in one audit: it runs on the loop */
#define FIRST 5

/* "kupenstack.io/v1alpha1/instances" for Instance or kupenstack.io/Instance, "v1/pods" for
 * /Pod; false for another group (not audited: its version is not known here). */
static bool resource_of(const char *kind, char *out, size_t cap)
{
	const char *slash = strchr(kind, '/');
	char plural[128];

	ks_lua_kube_plural(slash ? slash + 1 : kind, plural, sizeof(plural));
	if (!slash || strncmp(kind, "kupenstack.io/", 14) == 0)
		snprintf(out, cap, "kupenstack.io/v1alpha1/%s", plural);
	else if (slash == kind)
		snprintf(out, cap, "v1/%s", plural);
	else
		return false;
	return true;
}

struct run {
	struct ks_admission *a;
	struct entry *e;
	const char *kind;
	struct ks_policy_env env;
	unsigned seen, violations;
	bool stopped; /* the policy failed (a limit): not run again in this audit */
	cJSON *first;
	struct ks_buf events; /* kept to send only when the summary changed */
	cJSON *objs;
};

static const char *meta(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(o, "metadata"), k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void audit_obj(const struct ks_cache_obj *o, void *data)
{
	struct run *r = data;
	cJSON *obj, *nsdoc = NULL;
	const struct ks_cache_obj *nso;
	struct ks_policy_req req = { .operation = "AUDIT" };
	char *msg = NULL;
	int rc;

	if (r->seen >= MAX_OBJECTS || r->stopped)
		return;
	obj = cJSON_ParseWithLength(o->json, o->len);
	if (!obj)
		return;
	req.ns = meta(obj, "namespace") ? meta(obj, "namespace") : "";
	nso = *req.ns ? ks_cache_get(r->a->ns_cache, NULL, req.ns) : NULL;
	nsdoc = nso ? cJSON_ParseWithLength(nso->json, nso->len) : NULL;
	if (!ks_policy_in_scope(r->e->p, req.ns, nsdoc) || strcmp(req.ns, "kube-system") == 0 ||
	    strcmp(req.ns, r->a->o.namespace) == 0)
		goto out;
	r->seen++;
	req.name = meta(obj, "name");
	req.kind = r->kind;
	req.group = "";
	req.object = obj;
	req.namespace_obj = nsdoc;
	rc = ks_policy_validate(r->e->p, &req, &r->env, &msg);
	if (msg) {
		char *line = ks_xasprintf("%s%s%s: %s%s", req.ns, *req.ns ? "/" : "", req.name,
					  rc ? "the policy failed: " : "", msg);

		r->violations++;
		r->stopped = rc != 0; /* one failure says it: a looping policy holds the loop */
		if (cJSON_GetArraySize(r->first) < FIRST)
			cJSON_AddItemToArray(r->first, cJSON_CreateString(line));
		cJSON_AddItemToArray(r->objs, cJSON_Duplicate(obj, 1));
		cJSON_AddItemToArray(r->objs, cJSON_CreateString(msg));
		free(line);
		free(msg);
	}
out:
	cJSON_Delete(nsdoc);
	cJSON_Delete(obj);
}

static void status_done(struct ks_kube_result *res, void *data)
{
	if (!ks_kube_ok(res) && res->code != 404)
		ks_warn("admission: could not write an audit to a policy's status", "error=%s",
			res->message);
}

/* Write r's outcome to the policy's status, and an Event per violation, if it changed. */
static void report(struct run *r)
{
	const char *slash = strchr(r->e->id, '/');
	char *ns = slash ? ks_xstrndup(r->e->id, (size_t)(slash - r->e->id)) : NULL, now[32];
	cJSON *patch = cJSON_CreateObject(), *au, *v;
	char *first = cJSON_PrintUnformatted(r->first), *summary;
	time_t t = time(NULL);
	int i = 0;

	summary = ks_xasprintf("%u %s", r->violations, first);
	free(first);
	if (r->e->audit && strcmp(r->e->audit, summary) == 0)
		goto out; /* nothing new: no write, no Events */
	free(r->e->audit);
	r->e->audit = ks_xstrdup(summary);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	au = cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "status"), "audit");
	cJSON_AddNumberToObject(au, "violations", r->violations);
	cJSON_AddNumberToObject(au, "checked", r->seen);
	cJSON_AddStringToObject(au, "lastRun", now);
	cJSON_AddItemToObject(au, "firstViolations", cJSON_Duplicate(r->first, 1));
	ks_kube_patch(r->a->kube, ks_adm_policy_res(!ns), ns, slash ? slash + 1 : r->e->id,
		      "status", KS_PATCH_MERGE, patch, status_done, NULL);
	ks_info("admission: audit", "policy=%s violations=%u checked=%u", r->e->id, r->violations,
		r->seen);
	for (v = r->objs ? r->objs->child : NULL; v && v->next && r->a->events;
	     v = v->next->next, i++) {
		if (i < 20) /* the status counts them all */
			ks_event(r->a->events, v, "Warning", "PolicyViolation", "[%s] %s",
				 ks_policy_name(r->e->p), v->next->valuestring);
	}
out:
	free(summary);
	free(ns);
	cJSON_Delete(patch);
}

/* Audit one policy. Returns false when a cache it needs is not synced yet. */
static bool audit_entry(struct ks_admission *a, struct entry *e)
{
	struct run r = { .a = a, .e = e, .env = { ks_adm_env_list, a } };
	char res[256];
	bool synced = true;

	r.first = cJSON_CreateArray();
	r.objs = cJSON_CreateArray();
	for (const char *const *k = ks_policy_kinds(e->p); *k; k++) {
		struct read_cache *rc;

		if (!resource_of(*k, res, sizeof(res)))
			continue;
		ks_adm_ensure_read(a, res);
		rc = ks_adm_find_read(a, res);
		if (!rc || !ks_watch_synced(rc->watch)) {
			synced = false;
			continue;
		}
		r.kind = strchr(*k, '/') ? strchr(*k, '/') + 1 : *k;
		ks_cache_foreach(rc->cache, audit_obj, &r);
	}
	if (synced)
		report(&r);
	cJSON_Delete(r.first);
	cJSON_Delete(r.objs);
	return synced;
}

void ks_adm_audit_run(uv_timer_t *t)
{
	struct ks_admission *a = t->data;
	bool all = true;

	if (a->stopping)
		return;
	ks_adm_recheck_sources(a);
	for (size_t i = 0; i < a->nentries; i++) {
		if (a->entries[i].p && ks_policy_has_validate(a->entries[i].p))
			all &= audit_entry(a, &a->entries[i]);
	}
	ks_adm_audit_soon(a, all ? a->o.audit_seconds : 1);
}

void ks_adm_audit_soon(struct ks_admission *a, double seconds)
{
	uint64_t ms = (uint64_t)(seconds * 1000);

	if (a->stopping)
		return;
	if (uv_is_active((uv_handle_t *)&a->audit_timer) &&
	    uv_timer_get_due_in(&a->audit_timer) <= ms)
		return;
	uv_timer_start(&a->audit_timer, ks_adm_audit_run, ms, 0);
}
