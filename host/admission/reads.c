/* reads.c: the caches policies read through ctx.list, and the admitted CREATEs those
 * caches have not seen yet (counted as if they had: the quota race). */
#include "admission/impl.h"

#include <stdlib.h>
#include <string.h>

#include "ks.h"
#include "log.h"

#define PENDING_TTL_NS (30ull * 1000000000ull)
#define MAX_PENDING 10000 /* past it, one is dropped (forged reviews cannot grow it) */

static const char *meta(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "metadata");

	v = v ? cJSON_GetObjectItemCaseSensitive(v, k) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- pending: admitted CREATEs the cache has not seen yet (quota) ---- */

void ks_adm_pending_drop(struct ks_admission *a, size_t i)
{
	struct pending *p = &a->pending[i];

	free(p->group);
	free(p->resource);
	free(p->ns);
	free(p->name);
	cJSON_Delete(p->obj);
	a->pending[i] = a->pending[--a->npending];
}

static void pending_expire(struct ks_admission *a)
{
	uint64_t now = ks_now_ns();

	for (size_t i = a->npending; i-- > 0;) {
		if (a->pending[i].expires_ns < now)
			ks_adm_pending_drop(a, i);
	}
}

static void pending_seen(struct ks_admission *a, const struct read_cache *rc, const char *ns,
			 const char *name)
{
	for (size_t i = a->npending; i-- > 0;) {
		struct pending *p = &a->pending[i];

		if (strcmp(p->group, rc->group) == 0 && strcmp(p->resource, rc->resource) == 0 &&
		    strcmp(p->ns, ns ? ns : "") == 0 && strcmp(p->name, name) == 0)
			ks_adm_pending_drop(a, i);
	}
}

/* ---- ctx.list ---- */

struct read_cache *ks_adm_find_read(struct ks_admission *a, const char *res)
{
	for (size_t i = 0; i < a->nreads; i++) {
		if (strcmp(a->reads[i].res, res) == 0)
			return &a->reads[i];
	}
	return NULL;
}

struct list_ctx {
	cJSON *items;
	const char *ns;
};

static void add_obj(const struct ks_cache_obj *o, void *data)
{
	struct list_ctx *l = data;
	cJSON *obj;

	if (l->ns) {
		size_t n = strlen(l->ns);

		if (strncmp(o->key, l->ns, n) != 0 || o->key[n] != '/')
			return;
	}
	obj = cJSON_ParseWithLength(o->json, o->len);
	if (obj)
		cJSON_AddItemToArray(l->items, obj);
}

cJSON *ks_adm_env_list(void *data, const char *res, const char *ns, const char **err)
{
	struct ks_admission *a = data;
	struct read_cache *rc = ks_adm_find_read(a, res);
	struct list_ctx l = { NULL, ns };

	if (!rc || !ks_watch_synced(rc->watch)) {
		*err = "the host's cache of that resource is not synced yet";
		return NULL;
	}
	l.items = cJSON_CreateArray();
	ks_cache_foreach(rc->cache, add_obj, &l);
	pending_expire(a);
	for (size_t i = 0; i < a->npending; i++) {
		struct pending *p = &a->pending[i];

		if (strcmp(p->group, rc->group) == 0 && strcmp(p->resource, rc->resource) == 0 &&
		    (!ns || strcmp(p->ns, ns) == 0) && !ks_cache_get(rc->cache, p->ns, p->name))
			cJSON_AddItemToArray(l.items, cJSON_Duplicate(p->obj, 1));
	}
	return l.items;
}

struct read_handler {
	struct ks_admission *a;
	struct read_cache *rc;
};

static void read_added(const struct ks_cache_obj *o, void *data)
{
	struct read_handler *h = data;
	const char *slash = strchr(o->key, '/');
	char *ns = slash ? ks_xstrndup(o->key, (size_t)(slash - o->key)) : ks_xstrdup("");

	pending_seen(h->a, h->rc, ns, slash ? slash + 1 : o->key);
	free(ns);
}

/* Start a cache of res ("group/version/resource"), unless there is one. */
void ks_adm_ensure_read(struct ks_admission *a, const char *res)
{
	struct read_cache *rc;
	char *copy, *v, *r;
	struct read_handler *h;

	if (ks_adm_find_read(a, res) || a->nreads == MAX_READS)
		return;
	rc = &a->reads[a->nreads++];
	rc->res = ks_xstrdup(res);
	copy = ks_xstrdup(res);
	r = strrchr(copy, '/');
	*r++ = '\0';
	v = strrchr(copy, '/');
	if (v)
		*v++ = '\0';
	rc->group = ks_xstrdup(v ? copy : "");
	rc->version = ks_xstrdup(v ? v : copy);
	rc->resource = ks_xstrdup(r);
	free(copy);
	rc->cache = ks_cache_new();
	h = ks_xcalloc(1, sizeof(*h)); /* freed with the admission */
	h->a = a;
	h->rc = rc;
	rc->handler = h;
	ks_cache_add_handler(rc->cache, &(struct ks_cache_handler){ read_added, NULL, NULL, h });
	rc->watch = ks_watch_new(
		a->loop, a->kube, rc->cache,
		&(struct ks_watch_opts){ .res = { rc->group, rc->version, rc->resource, true } });
	ks_watch_start(rc->watch);
	ks_info("admission: caching for policies", "resource=%s", res);
}

void ks_adm_remember(struct ks_admission *a, const cJSON *doc, const struct ks_policy_req *r)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(doc, "request");
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(req, "resource");
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(res, "group"),
		    *rs = cJSON_GetObjectItemCaseSensitive(res, "resource");
	const char *name = r->object ? meta(r->object, "name") : NULL; /* generateName: set */
	struct pending *p;
	bool read = false;

	if (!cJSON_IsString(g) || !cJSON_IsString(rs) || !name || !*name)
		return;
	for (size_t i = 0; i < a->nreads; i++)
		read |= strcmp(a->reads[i].group, g->valuestring) == 0 &&
			strcmp(a->reads[i].resource, rs->valuestring) == 0;
	if (!read)
		return;
	pending_expire(a);
	if (a->npending >= MAX_PENDING)
		ks_adm_pending_drop(a, 0);
	a->pending = ks_xrealloc(a->pending, (a->npending + 1) * sizeof(*p));
	p = &a->pending[a->npending++];
	p->group = ks_xstrdup(g->valuestring);
	p->resource = ks_xstrdup(rs->valuestring);
	p->ns = ks_xstrdup(r->ns);
	p->name = ks_xstrdup(name);
	p->obj = cJSON_Duplicate(r->object, 1);
	p->expires_ns = ks_now_ns() + PENDING_TTL_NS;
}
