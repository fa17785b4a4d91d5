#pragma once
/*
 * bind_kube.h: what the parts of ks.core.kube share: bind_kube.c (the module, and the
 * writes through the API server), bind_kube_read.c (the reads from the caches) and
 * bind_kube_batch.c (kube.batch).
 */
#include <lua.h>

#include "kube.h"

/* A res parsed from Lua; strings live in buf. */
struct ks_lua_kube_res {
	struct ks_kube_res r;
	char group[128], version[64], resource[128];
};

/* Parse the res table (or object) at idx into r; raises on a malformed one. */
void ks_lua_kube_check_res(lua_State *L, int idx, struct ks_lua_kube_res *r);
/* kube.get(res, ns, name) -> obj | nil, from the host's cache. */
int ks_lua_kube_get(lua_State *L);
/* kube.list(res, {namespace=, labels=, owner=, status_id=}) -> { obj... }, from the cache. */
int ks_lua_kube_list(lua_State *L);
