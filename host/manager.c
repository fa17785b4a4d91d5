/*
 * manager.c: shared informers, one per kind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ks.h"
#include "log.h"
#include "manager.h"

struct informer {
	char *group, *version, *resource;
	struct ks_kube_res res;
	struct ks_cache *cache;
	struct ks_watch *watch;
	struct informer *next;
};

struct ks_manager {
	uv_loop_t *loop;
	struct ks_kube *kube;
	char *namespace;
	struct informer *informers;
	size_t n;
};

struct ks_manager *ks_manager_new(uv_loop_t *loop, struct ks_kube *kube, const char *namespace)
{
	struct ks_manager *m = ks_xcalloc(1, sizeof(*m));

	m->loop = loop;
	m->kube = kube;
	m->namespace = namespace ? ks_xstrdup(namespace) : NULL;
	return m;
}

void ks_manager_free(struct ks_manager *m)
{
	struct informer *i, *next;

	if (!m)
		return;
	for (i = m->informers; i; i = next) {
		next = i->next;
		ks_watch_free(i->watch);
		ks_cache_free(i->cache);
		free(i->group);
		free(i->version);
		free(i->resource);
		free(i);
	}
	free(m->namespace);
	free(m);
}

static bool same(const struct ks_kube_res *a, const struct ks_kube_res *b)
{
	return strcmp(a->group ? a->group : "", b->group ? b->group : "") == 0 &&
	       strcmp(a->version, b->version) == 0 && strcmp(a->resource, b->resource) == 0;
}

struct ks_cache *ks_manager_find(struct ks_manager *m, const struct ks_kube_res *res)
{
	struct informer *i;

	for (i = m->informers; i; i = i->next)
		if (same(&i->res, res))
			return i->cache;
	return NULL;
}

struct ks_cache *ks_manager_cache(struct ks_manager *m, const struct ks_kube_res *res)
{
	struct ks_cache *c = ks_manager_find(m, res);
	struct informer *i;

	if (c)
		return c;
	i = ks_xcalloc(1, sizeof(*i));
	i->group = ks_xstrdup(res->group ? res->group : "");
	i->version = ks_xstrdup(res->version);
	i->resource = ks_xstrdup(res->resource);
	i->res = (struct ks_kube_res){ i->group, i->version, i->resource, res->namespaced };
	i->cache = ks_cache_new();
	i->watch = ks_watch_new(m->loop, m->kube, i->cache,
				&(struct ks_watch_opts){
					.res = i->res,
					.namespace = res->namespaced ? m->namespace : NULL,
				});
	i->next = m->informers;
	m->informers = i;
	m->n++;
	ks_watch_start(i->watch);
	ks_info("watching", "resource=%s group=%s namespace=%s", i->resource,
		*i->group ? i->group : "core",
		m->namespace && res->namespaced ? m->namespace : "*");
	return i->cache;
}

bool ks_manager_synced(struct ks_manager *m, const struct ks_kube_res *res)
{
	struct informer *i;

	for (i = m->informers; i; i = i->next)
		if (same(&i->res, res))
			return ks_watch_synced(i->watch);
	return false;
}

bool ks_manager_all_synced(struct ks_manager *m, char *why, size_t cap)
{
	struct informer *i;

	for (i = m->informers; i; i = i->next) {
		if (!ks_watch_synced(i->watch)) {
			snprintf(why, cap, "%s.%s not synced yet", i->resource, i->group);
			return false;
		}
	}
	return true;
}

size_t ks_manager_len(const struct ks_manager *m)
{
	return m->n;
}

const char *ks_manager_namespace(const struct ks_manager *m)
{
	return m->namespace;
}
