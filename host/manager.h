#pragma once
/*
 * manager.h: the shared informers of one process: one reflector and cache per kind
 * (and namespace scope), however many controllers and plugins look at that kind.
 * Controllers add handlers to the caches; plugins read them through ks.core.kube.
 */
#include <stdbool.h>

#include <uv.h>

#include "cache.h"
#include "kube.h"
#include "watch.h"

struct ks_manager;

/* namespace: NULL watches all namespaces; otherwise only that one. Never NULL. */
struct ks_manager *ks_manager_new(uv_loop_t *loop, struct ks_kube *kube, const char *namespace);
/* Stop every reflector and free the caches. Handlers must be gone or not fire again. */
void ks_manager_free(struct ks_manager *m);

/*
 * The cache of kind res, created (and its reflector started) on first use. Cluster-
 * scoped kinds (res->namespaced false) are watched cluster-wide. Never NULL.
 */
struct ks_cache *ks_manager_cache(struct ks_manager *m, const struct ks_kube_res *res);
/* The cache of res if one exists, else NULL (does not create one). */
struct ks_cache *ks_manager_find(struct ks_manager *m, const struct ks_kube_res *res);
/* Has res's reflector applied a full LIST yet? false for an unknown kind. */
bool ks_manager_synced(struct ks_manager *m, const struct ks_kube_res *res);
/* Have all reflectors synced? (for /readyz) */
bool ks_manager_all_synced(struct ks_manager *m, char *why, size_t cap);
/* The namespace the manager is limited to, or NULL. */
const char *ks_manager_namespace(const struct ks_manager *m);
/* Number of informers (kinds watched). */
size_t ks_manager_len(const struct ks_manager *m);
