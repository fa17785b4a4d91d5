/* source.c: where a policy version's Lua and fixtures come from (spec.lua and
 * spec.fixtures, or the ConfigMap spec.luaFrom.configMap names: its key, policy.lua by
 * default, and every key ending in .yaml a fixture), and the gate before a version is put
 * in force: it compiles and every fixture passes, else the previous version stays.
 *
 * A source ConfigMap is read from the operator's namespace only (--admission-namespace,
 * where only cluster admins write, and where the host may read ConfigMaps), and only one
 * labelled kupenstack.io/policy-source=true: a namespace's editors may write its
 * ConfigMaps, so one there would let them change a policy set on them, and the label keeps
 * a Policy's author from compiling (and reading back in errors) the operator's other
 * ConfigMaps. */
#include "admission/impl.h"

#include <stdlib.h>
#include <string.h>

#include "admission/fixture.h"
#include "ks.h"
#include "log.h"
#include "yaml.h"

/* Wall time a version's fixtures may hold the loop: a namespaced Policy's author may be
 * a namespace's user (its calls get a tenth of the limits too). */
#define FIXTURE_SECONDS 2.0
#define FIXTURE_SECONDS_NS 0.5

/* And over time: each new version of a namespaced Policy is compiled and its fixtures run
 * on the loop, and its author may write versions as fast as the API server takes them. The
 * Policies of one namespace may use 1/NS_SHARE of the loop's time, in bursts of NS_BURST
 * seconds of use (GCRA: the namespace's use is paid back at NS_SHARE times the time it
 * took); a version past that is put off, the previous one staying in force and the status
 * saying when it is checked, and it is checked by the audit tick after that. */
#define NS_SHARE 20.0
#define NS_BURST 2.0

static const struct ks_kube_res cm_res = { "", "v1", "configmaps", true };
#define SOURCE_LABEL "kupenstack.io/policy-source"
#define GONE "!gone" /* the "resourceVersion" of a ConfigMap not found: said once */

struct cm_read { /* a ConfigMap read under way for one policy version */
	struct ks_admission *a;
	char *id, *name, *key;
	long long generation;
	bool recheck; /* a periodic re-read: compile only when the ConfigMap changed */
};

static const char *str_at(const cJSON *o, const char *const *path)
{
	for (; *path && o; path++)
		o = cJSON_GetObjectItemCaseSensitive(o, *path);
	return cJSON_IsString(o) ? o->valuestring : NULL;
}

static struct entry *find(struct ks_admission *a, const char *id)
{
	for (size_t i = 0; i < a->nentries; i++) {
		if (strcmp(a->entries[i].id, id) == 0)
			return &a->entries[i];
	}
	return NULL;
}

static void refuse(struct ks_admission *a, struct entry *e, const cJSON *cr, const char *err)
{
	ks_adm_put(a, e, cr, NULL, err);
}

static struct ns_share *share_of(struct ks_admission *a, const char *ns)
{
	for (size_t i = 0; i < a->nshares; i++) {
		if (strcmp(a->shares[i].ns, ns) == 0)
			return &a->shares[i];
	}
	a->shares = ks_xrealloc(a->shares, (a->nshares + 1) * sizeof(*a->shares));
	a->shares[a->nshares] = (struct ns_share){ ks_xstrdup(ns), 0 };
	return &a->shares[a->nshares++];
}

/* Seconds until namespace share s may spend again at now; 0 when it may now. */
static double share_wait(const struct ns_share *s, uint64_t now)
{
	double owed = s->paid_ns > now ? (double)(s->paid_ns - now) / 1e9 : 0;

	return owed > NS_BURST * NS_SHARE ? owed - NS_BURST * NS_SHARE : 0;
}

static void share_spend(struct ns_share *s, uint64_t t0, uint64_t t1)
{
	s->paid_ns = (s->paid_ns > t0 ? s->paid_ns : t0) + (uint64_t)((double)(t1 - t0) * NS_SHARE);
}

/* Compile cr (spec.lua set), run the fixtures (may be NULL), and put the version in force
 * or keep the previous one; the status says which. A namespaced Policy whose namespace has
 * spent its share of the loop is put off (e->deferred). Takes neither. */
static void gate(struct ks_admission *a, struct entry *e, const cJSON *cr, const cJSON *fixtures,
		 const char *rv)
{
	const char *ns = str_at(cr, (const char *const[]){ "metadata", "namespace", NULL });
	struct ns_share *share = ns ? share_of(a, ns) : NULL;
	uint64_t t0 = ks_now_ns();
	double wait = share ? share_wait(share, t0) : 0;
	char *err = NULL, *why;
	struct ks_policy *p;

	e->deferred = wait > 0;
	if (e->deferred) {
		err = ks_xasprintf("not checked yet: the Policies of namespace %s have used their "
				   "share of the host's time (compiling and fixtures: 1/%.0f of "
				   "it, %.1f s at once); checked again in %.0f s",
				   ns, NS_SHARE, NS_BURST, wait + 1);
		ks_warn("admission: policy put off", "policy=%s namespace=%s seconds=%.1f", e->id,
			ns, wait);
		refuse(a, e, cr, err);
		free(err);
		ks_adm_audit_soon(a, wait + 0.5);
		return;
	}
	p = ks_policy_new(a->loop, cr, &err);
	if (p && fixtures &&
	    (why = ks_policy_fixtures_check(p, fixtures,
					    ns ? FIXTURE_SECONDS_NS : FIXTURE_SECONDS))) {
		err = ks_xasprintf("the new version failed its fixtures: %s", why);
		free(why);
		ks_policy_free(p);
		p = NULL;
	}
	if (share)
		share_spend(share, t0, ks_now_ns());
	free(e->source_rv);
	e->source_rv = rv ? ks_xstrdup(rv) : NULL;
	ks_adm_put(a, e, cr, p, err);
	free(err);
}

/* The fixtures of a ConfigMap: its keys ending in .yaml, parsed; NULL with *err naming
 * the key that does not parse. */
static cJSON *cm_fixtures(const cJSON *data, const char *lua_key, char **err)
{
	cJSON *out = cJSON_CreateObject(), *doc;
	const cJSON *v;
	char *perr = NULL;

	cJSON_ArrayForEach(v, data)
	{
		size_t n = strlen(v->string);

		if (n <= 5 || strcmp(v->string + n - 5, ".yaml") != 0 ||
		    strcmp(v->string, lua_key) == 0 || !cJSON_IsString(v))
			continue;
		doc = ks_yaml_parse(v->valuestring, strlen(v->valuestring), &perr);
		if (!doc) {
			*err = ks_xasprintf("fixture %s: %s", v->string, perr ? perr : "no YAML");
			free(perr);
			cJSON_Delete(out);
			return NULL;
		}
		cJSON_AddItemToObject(out, v->string, doc);
	}
	return out;
}

static bool label_ok(const cJSON *cm)
{
	const char *v =
		str_at(cm, (const char *const[]){ "metadata", "labels", SOURCE_LABEL, NULL });

	return v && strcmp(v, "true") == 0;
}

static void cm_read_free(struct cm_read *r)
{
	free(r->id);
	free(r->name);
	free(r->key);
	free(r);
}

static cJSON *cached_cr(struct ks_admission *a, const char *id)
{
	const char *slash = strchr(id, '/');
	const struct ks_cache_obj *o;
	char *ns = slash ? ks_xstrndup(id, (size_t)(slash - id)) : NULL;

	o = ks_cache_get(slash ? a->pol_cache : a->cpol_cache, ns, slash ? slash + 1 : id);
	free(ns);
	return o ? cJSON_ParseWithLength(o->json, o->len) : NULL;
}

static void cm_done(struct ks_kube_result *res, void *data)
{
	struct cm_read *r = data;
	struct ks_admission *a = r->a;
	struct entry *e;
	cJSON *cr, *fixtures;
	const char *rv, *lua;
	char *err = NULL;

	if (a->stopping || !(e = find(a, r->id)) || e->generation != r->generation ||
	    !(cr = cached_cr(a, r->id))) {
		cm_read_free(r); /* gone, or a newer version is being read */
		return;
	}
	if (ks_kube_ok(res))
		rv = str_at(res->body,
			    (const char *const[]){ "metadata", "resourceVersion", NULL });
	else
		rv = res->code == 404 ? GONE : NULL;
	if (r->recheck && (!rv || (e->source_rv && strcmp(rv, e->source_rv) == 0))) {
		/* unchanged, gone and said so, or unreadable for now: keep what is in force */
		cJSON_Delete(cr);
		cm_read_free(r);
		return;
	}
	lua = ks_kube_ok(res) ? str_at(res->body, (const char *const[]){ "data", r->key, NULL })
			      : NULL;
	if (!ks_kube_ok(res)) {
		err = ks_xasprintf("spec.luaFrom.configMap: cannot read the ConfigMap %s/%s: %s",
				   a->o.namespace, r->name, res->message);
	} else if (!label_ok(res->body)) {
		err = ks_xasprintf(
			"spec.luaFrom.configMap: the ConfigMap %s/%s lacks the label " SOURCE_LABEL
			"=true (only a ConfigMap so labelled is a policy source)",
			a->o.namespace, r->name);
	} else if (!lua) {
		err = ks_xasprintf("spec.luaFrom.configMap: the ConfigMap %s/%s has no key %s",
				   a->o.namespace, r->name, r->key);
	} else if ((fixtures = cm_fixtures(cJSON_GetObjectItem(res->body, "data"), r->key, &err))) {
		cJSON *spec = cJSON_GetObjectItem(cr, "spec");

		cJSON_DeleteItemFromObject(spec, "lua");
		cJSON_AddStringToObject(spec, "lua", lua);
		if (r->recheck)
			ks_info("admission: the policy's ConfigMap changed", "policy=%s", r->id);
		gate(a, e, cr, cJSON_GetArraySize(fixtures) ? fixtures : NULL, rv);
		cJSON_Delete(fixtures);
	} else {
		char *e2 = ks_xasprintf("spec.luaFrom.configMap: %s", err);

		free(err);
		err = e2;
	}
	if (err) {
		free(e->source_rv);
		e->source_rv = rv ? ks_xstrdup(rv) : NULL;
		refuse(a, e, cr, err);
	}
	free(err);
	cJSON_Delete(cr);
	cm_read_free(r);
}

/* Read the ConfigMap of cr's spec.luaFrom.configMap; NULL when it names none, else the
 * problem with it (free it) or "" (a read is under way). */
static char *read_cm(struct ks_admission *a, struct entry *e, const cJSON *cr, bool recheck)
{
	const cJSON *ref = cJSON_GetObjectItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cr, "spec"), "luaFrom"), "configMap");
	const char *name = str_at(ref, (const char *const[]){ "name", NULL });
	const char *ns = str_at(ref, (const char *const[]){ "namespace", NULL });
	const char *key = str_at(ref, (const char *const[]){ "key", NULL });
	struct cm_read *r;

	if (!ref)
		return NULL;
	e->from_cm = true;
	if (!name || !*name)
		return ks_xstrdup("spec.luaFrom.configMap.name: required");
	if (ns && *ns && strcmp(ns, a->o.namespace) != 0)
		return ks_xasprintf("spec.luaFrom.configMap.namespace: a policy's ConfigMap is "
				    "read from the operator's namespace (%s) only, not %s: a "
				    "namespace's editors may write ConfigMaps there",
				    a->o.namespace, ns);
	if (cJSON_GetObjectItem(cJSON_GetObjectItem(cr, "spec"), "lua"))
		return ks_xstrdup("spec.lua and spec.luaFrom: one or the other");
	r = ks_xcalloc(1, sizeof(*r));
	r->a = a;
	r->id = ks_xstrdup(e->id);
	r->name = ks_xstrdup(name);
	r->key = ks_xstrdup(key ? key : "policy.lua");
	r->generation = e->generation;
	r->recheck = recheck;
	ks_kube_get(a->kube, &cm_res, a->o.namespace, name, cm_done, r);
	return ks_xstrdup("");
}

void ks_adm_load(struct ks_admission *a, struct entry *e, const cJSON *cr)
{
	char *err = read_cm(a, e, cr, false);
	const cJSON *fixtures;

	if (err && *err)
		refuse(a, e, cr, err);
	if (err) {
		free(err);
		return;
	}
	fixtures = cJSON_GetObjectItem(cJSON_GetObjectItem(cr, "spec"), "fixtures");
	gate(a, e, cr, cJSON_GetArraySize(fixtures) ? fixtures : NULL, NULL);
}

void ks_adm_recheck_sources(struct ks_admission *a)
{
	for (size_t i = 0; i < a->nentries; i++) {
		struct entry *e = &a->entries[i];
		cJSON *cr;
		char *err;

		if (e->deferred && (cr = cached_cr(a, e->id))) {
			ks_adm_load(a, e, cr); /* its namespace's share may be spent again */
			cJSON_Delete(cr);
			continue;
		}
		if (!e->from_cm || !(cr = cached_cr(a, e->id)))
			continue;
		err = read_cm(a, e, cr, true);
		free(err);
		cJSON_Delete(cr);
	}
}
