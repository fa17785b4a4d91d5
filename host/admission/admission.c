/* admission.c: the admission webhooks' policies, caches and requests. */
#include "admission/impl.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admission/review.h"
#include "ks.h"
#include "log.h"

static const struct ks_kube_res cpol_res = { "kupenstack.io", "v1alpha1", "clusterpolicies",
					     false };
static const struct ks_kube_res pol_res = { "kupenstack.io", "v1alpha1", "policies", true };
static const struct ks_kube_res ns_res = { "", "v1", "namespaces", false };

static cJSON *str_path(const cJSON *o, const char *a, const char *b)
{
	o = cJSON_GetObjectItemCaseSensitive(o, a);
	return o ? cJSON_GetObjectItemCaseSensitive(o, b) : NULL;
}

static const char *meta(const cJSON *o, const char *k)
{
	const cJSON *v = str_path(o, "metadata", k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- policies ---- */

static struct entry *find_entry(struct ks_admission *a, const char *id)
{
	for (size_t i = 0; i < a->nentries; i++) {
		if (strcmp(a->entries[i].id, id) == 0)
			return &a->entries[i];
	}
	return NULL;
}

static void status_done(struct ks_kube_result *res, void *data)
{
	char *id = data;

	if (!ks_kube_ok(res) && res->code != 404)
		ks_warn("admission: could not write a policy's status", "policy=%s error=%s", id,
			res->message);
	free(id);
}

static void write_status(struct ks_admission *a, const cJSON *cr, long long gen, const char *err)
{
	cJSON *patch = cJSON_CreateObject(), *st = cJSON_AddObjectToObject(patch, "status"), *c;
	char now[32];
	const char *ns = meta(cr, "namespace");
	time_t t = time(NULL);

	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	cJSON_AddStringToObject(st, "phase", err ? "Refused" : "Loaded");
	cJSON_AddStringToObject(st, "message", err ? err : "compiled and in force");
	cJSON_AddNumberToObject(st, "observedGeneration", (double)gen);
	c = cJSON_AddArrayToObject(st, "conditions");
	c = cJSON_AddObjectToObject(c, "");
	cJSON_DetachItemViaPointer(cJSON_GetObjectItem(st, "conditions"), c);
	cJSON_AddItemToArray(cJSON_GetObjectItem(st, "conditions"), c);
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status", err ? "False" : "True");
	cJSON_AddStringToObject(c, "reason", err ? "Refused" : "Loaded");
	cJSON_AddStringToObject(c, "message", err ? err : "the policy is compiled and enforced");
	cJSON_AddStringToObject(c, "lastTransitionTime", now);
	cJSON_AddNumberToObject(c, "observedGeneration", (double)gen);
	ks_kube_patch(a->kube, ns ? &pol_res : &cpol_res, ns, meta(cr, "name"), "status",
		      KS_PATCH_MERGE, patch, status_done, ks_xstrdup(meta(cr, "name")));
	cJSON_Delete(patch);
}

void ks_adm_put(struct ks_admission *a, struct entry *e, const cJSON *cr, struct ks_policy *p,
		const char *err)
{
	char *msg = NULL;

	if (p) {
		ks_policy_free(e->p);
		e->p = p;
		for (const char *const *r = ks_policy_reads(p); *r; r++)
			ks_adm_ensure_read(a, *r);
		ks_info("admission: policy loaded", "policy=%s generation=%lld", e->id,
			e->generation);
		if (a->events)
			ks_event(a->events, cr, "Normal", "PolicyLoaded",
				 "generation %lld compiled and in force", e->generation);
	} else {
		ks_warn("admission: policy refused", "policy=%s error=%s kept=%s", e->id, err,
			e->p ? "the previous version" : "none");
		msg = ks_xasprintf("%s (%s)", err,
				   e->p ? "the previous version stays in force" : "none in force");
		if (a->events)
			ks_event(a->events, cr, "Warning", "PolicyRefused", "%s", msg);
	}
	write_status(a, cr, e->generation, msg);
	free(msg);
	ks_adm_apply_soon(a);
	if (p) { /* audit the new version: its caches need a moment to sync */
		free(e->audit);
		e->audit = NULL;
		ks_adm_audit_soon(a, 1);
	}
}

static void policy_changed(const struct ks_cache_obj *o, struct ks_admission *a)
{
	cJSON *cr = cJSON_ParseWithLength(o->json, o->len);
	struct entry *e = find_entry(a, o->key);

	if (!cr)
		return;
	if (e && e->generation == o->generation) {
		cJSON_Delete(cr);
		return; /* a status change: nothing to compile */
	}
	if (!e) {
		a->entries = ks_xrealloc(a->entries, (a->nentries + 1) * sizeof(*e));
		e = &a->entries[a->nentries++];
		memset(e, 0, sizeof(*e));
		e->id = ks_xstrdup(o->key);
	}
	e->generation = o->generation;
	e->from_cm = false;
	ks_adm_load(a, e, cr);
	cJSON_Delete(cr);
}

static void on_pol_add(const struct ks_cache_obj *o, void *data)
{
	policy_changed(o, data);
}

static void on_pol_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	policy_changed(o, data);
}

static void on_pol_delete(const struct ks_cache_obj *o, void *data)
{
	struct ks_admission *a = data;
	struct entry *e = find_entry(a, o->key);

	if (!e)
		return;
	ks_policy_free(e->p);
	free(e->id);
	free(e->audit);
	free(e->source_rv);
	*e = a->entries[--a->nentries];
	ks_info("admission: policy removed", "policy=%s", o->key);
	ks_adm_apply_soon(a);
}

/* The policies in force, ClusterPolicies first, each in name order. */
static size_t in_force(struct ks_admission *a, struct ks_policy **out, size_t cap)
{
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		size_t first = n;

		for (size_t i = 0; i < a->nentries; i++) {
			struct entry *e = &a->entries[i];

			if (e->p && (strchr(e->id, '/') == NULL) == (pass == 0) && n < cap)
				out[n++] = e->p;
		}
		for (size_t i = first + 1; i < n; i++) { /* insertion sort by id */
			struct ks_policy *p = out[i];
			size_t j = i;

			for (; j > first && strcmp(ks_policy_id(out[j - 1]), ks_policy_id(p)) > 0;
			     j--)
				out[j] = out[j - 1];
			out[j] = p;
		}
	}
	return n;
}

cJSON *ks_adm_rules(struct ks_admission *a)
{
	cJSON *all = cJSON_CreateArray(), *rules, *r;

	for (size_t i = 0; i < a->nentries; i++) {
		if (!a->entries[i].p)
			continue;
		rules = ks_policy_rules(a->entries[i].p);
		while ((r = cJSON_DetachItemFromArray(rules, 0)))
			cJSON_AddItemToArray(all, r);
		cJSON_Delete(rules);
	}
	return all;
}

const struct ks_kube_res *ks_adm_policy_res(bool cluster)
{
	return cluster ? &cpol_res : &pol_res;
}

/* ---- requests ---- */

static bool exempt(struct ks_admission *a, const char *ns)
{
	return strcmp(ns, "kube-system") == 0 || strcmp(ns, a->o.namespace) == 0;
}

/* An update of an object being deleted (its finalizers taken off): never refused, or a
 * policy made after the object could hold its deletion forever. */
static bool being_deleted(const struct ks_policy_req *r)
{
	return r->old && strcmp(r->operation, "UPDATE") == 0 &&
	       str_path(r->old, "metadata", "deletionTimestamp");
}

int ks_adm_serve(void *data, const char *path, const char *body, size_t len, struct ks_buf *out,
		 const char **ctype)
{
	struct ks_admission *a = data;
	bool mutate = strcmp(path, "/mutate") == 0, dry_run = false;
	struct ks_policy **ps = NULL;
	struct ks_policy_env env = { ks_adm_env_list, a };
	struct ks_review_out res = { .allowed = true };
	struct ks_policy_req r;
	const struct ks_cache_obj *nso;
	const char *uid, *err;
	cJSON *doc, *nsdoc = NULL;
	char *text;
	size_t n;

	if (!mutate && strcmp(path, "/validate") != 0) {
		ks_buf_puts(out, "{\"message\":\"no such webhook (/validate, /mutate)\"}");
		return 404;
	}
	doc = ks_review_parse(body, &r, &uid, &dry_run, &err);
	if (!doc) {
		ks_buf_printf(out, "{\"message\":\"%s\"}", err);
		return 400;
	}
	nso = ks_cache_get(a->ns_cache, NULL, *r.ns ? r.ns : r.name);
	if (nso && (*r.ns || strcmp(r.kind, "Namespace") == 0))
		nsdoc = cJSON_ParseWithLength(nso->json, nso->len);
	r.namespace_obj = nsdoc; /* for a Namespace itself: the stored one */
	if (!exempt(a, r.ns) && !being_deleted(&r)) {
		ps = ks_xcalloc(a->nentries + 1, sizeof(*ps));
		n = in_force(a, ps, a->nentries);
		ks_review_run(ps, n, &r, &env, mutate, &res);
	}
	if (res.audits) {
		text = cJSON_PrintUnformatted(res.audits);
		ks_info("admission: audit", "op=%s kind=%s namespace=%s name=%s violations=%s",
			r.operation, r.kind, r.ns, r.name, text);
		free(text);
	}
	if (!mutate && res.allowed && !dry_run && strcmp(r.operation, "CREATE") == 0)
		ks_adm_remember(a, doc, &r);
	if (!res.allowed)
		ks_info("admission: denied", "op=%s kind=%s namespace=%s name=%s message=%s",
			r.operation, r.kind, r.ns, r.name, res.message);
	text = ks_review_response(uid, &res);
	ks_buf_puts(out, text);
	free(text);
	ks_review_out_deinit(&res);
	cJSON_Delete(nsdoc);
	cJSON_Delete(doc);
	free(ps);
	(void)len;
	*ctype = "application/json";
	return 200;
}

/* ---- life ---- */

static struct ks_watch *watch(struct ks_admission *a, struct ks_cache *c,
			      const struct ks_kube_res *res)
{
	struct ks_watch *w =
		ks_watch_new(a->loop, a->kube, c, &(struct ks_watch_opts){ .res = *res });

	ks_watch_start(w);
	return w;
}

struct ks_admission *ks_admission_new(uv_loop_t *loop, struct ks_kube *kube,
				      struct ks_events *events, const struct ks_admission_opts *o)
{
	struct ks_admission *a = ks_xcalloc(1, sizeof(*a));
	struct ks_cache_handler h = { on_pol_add, on_pol_update, on_pol_delete, a };

	a->loop = loop;
	a->kube = kube;
	a->events = events;
	a->o = *o;
	a->o.audit_seconds = o->audit_seconds > 0 ? o->audit_seconds : 300;
	a->o.namespace = o->namespace ? o->namespace : "kupenstack-system";
	a->o.failure_policy = o->failure_policy ? o->failure_policy : "Fail";
	a->o.timeout_seconds = o->timeout_seconds ? o->timeout_seconds : 5;
	a->o.cert_seconds = o->cert_seconds ? o->cert_seconds : 365L * 86400;
	a->o.name = o->name ? o->name : "kupenstack";
	if (o->service) {
		const char *colon = strchr(o->service, ':');

		a->svc_name = colon ? ks_xstrndup(o->service, (size_t)(colon - o->service))
				    : ks_xstrdup(o->service);
		a->svc_port = colon ? atoi(colon + 1) : 443;
	} else {
		a->url = o->url ? ks_xstrdup(o->url) : ks_xasprintf("https://%s", o->addr);
	}
	a->svc_dns = a->svc_name ? ks_xasprintf("%s.%s.svc", a->svc_name, a->o.namespace)
				 : ks_xasprintf("%s-admission.%s.svc", a->o.name, a->o.namespace);
	if (o->client_ca) {
		size_t len;
		int rc = 0;

		a->client_ca_pem = ks_read_file(o->client_ca, &len, &rc);
		if (!a->client_ca_pem) {
			ks_err("admission: cannot read the client CA; not serving",
			       "file=%s error=%s", o->client_ca, strerror(-rc));
			a->no_serve = true;
		}
	}
	a->cpol_cache = ks_cache_new();
	a->pol_cache = ks_cache_new();
	a->ns_cache = ks_cache_new();
	ks_cache_add_handler(a->cpol_cache, &h);
	ks_cache_add_handler(a->pol_cache, &h);
	a->cpol_watch = watch(a, a->cpol_cache, &cpol_res);
	a->pol_watch = watch(a, a->pol_cache, &pol_res);
	a->ns_watch = watch(a, a->ns_cache, &ns_res);
	ks_adm_cert_start(a);
	return a;
}

/* NAME or NAME:PORT: a DNS label and a port from 1 to 65535. */
static bool service_ok(const char *arg)
{
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	char *end;
	long port;

	if (n == 0 || n > 63 || arg[0] == '-' || arg[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= '0' && arg[i] <= '9') ||
		      arg[i] == '-'))
			return false;
	}
	if (!colon)
		return true;
	port = strtol(colon + 1, &end, 10);
	return colon[1] && !*end && port >= 1 && port <= 65535;
}

static bool client_ca_ok(const char *path, char **why)
{
	int rc = 0;
	size_t len;
	char *pem = ks_read_file(path, &len, &rc), *err = NULL;
	bool ok;

	if (!pem) {
		*why = ks_xasprintf("cannot read %s: %s", path, strerror(-rc));
		return false;
	}
	ok = ks_https_ca_ok(pem, &err);
	if (!ok)
		*why = ks_xasprintf("%s: %s", path, err);
	free(err);
	free(pem);
	return ok;
}

int ks_admission_flag(struct ks_admission_opts *o, int i, const char *arg)
{
	static const char *const names[] = { "addr",	       "url",	       "namespace",
					     "failure-policy", "cert-seconds", "audit-seconds",
					     "service",	       "client-ca" };
	static const char *const wants[] = {
		"",
		"an https:// URL",
		"",
		"Fail or Ignore",
		"seconds, from 30 to ten years",
		"seconds, from 1 to 86400",
		"NAME or NAME:PORT (a DNS label, a port from 1 to 65535)",
		""
	};
	char *end, *why = NULL;
	long n;

	switch (i) {
	case 0:
		o->addr = arg;
		return 0;
	case 1:
		if (strncmp(arg, "https://", 8) != 0)
			break;
		o->url = arg;
		return 0;
	case 2:
		o->namespace = arg;
		return 0;
	case 3:
		if (strcmp(arg, "Fail") != 0 && strcmp(arg, "Ignore") != 0)
			break;
		o->failure_policy = arg;
		return 0;
	case 5:
		o->audit_seconds = strtod(arg, &end);
		if (*end || !(o->audit_seconds >= 1 && o->audit_seconds <= 86400))
			break;
		return 0;
	case 6:
		if (!service_ok(arg))
			break;
		o->service = arg;
		return 0;
	case 7:
		if (!client_ca_ok(arg, &why))
			break;
		o->client_ca = arg;
		return 0;
	default:
		n = strtol(arg, &end, 10);
		if (*end || n < 30 || n > 10L * 365 * 86400)
			break;
		o->cert_seconds = n;
		return 0;
	}
	fprintf(stderr, "kupenstack: --admission-%s: %s\n", names[i], why ? why : wants[i]);
	free(why);
	return -EINVAL;
}

int ks_admission_check(const struct ks_admission_opts *o)
{
	if (o->url && o->service) {
		fprintf(stderr, "kupenstack: --admission-url and --admission-service: one or the "
				"other (a URL, or the Service in front of the host)\n");
		return -EINVAL;
	}
	if ((o->url || o->service || o->client_ca) && !o->addr) {
		fprintf(stderr, "kupenstack: --admission-url, --admission-service and "
				"--admission-client-ca need --admission-addr\n");
		return -EINVAL;
	}
	return 0;
}
