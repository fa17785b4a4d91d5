/*
 * bind_kube_read.c: kube.get and kube.list (part of ks.core.kube, bind_kube.c): reads
 * from the host's caches, answered at once (no yield).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cache.h"
#include "json.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/bind_kube.h"
#include "lua/engine.h"

static struct ks_cache *cache_of(lua_State *L, const struct ks_lua_kube_res *r)
{
	const struct ks_lua_host *h = ks_lua_host(ks_lua_from(L));
	struct ks_cache *c = h->cache_for ? h->cache_for(h->cache_data, &r->r) : NULL;

	if (!c)
		luaL_error(L,
			   "kube: %s.%s/%s is not cached: declare it in the plugin's 'owns' or "
			   "'watches', or use kube.fetch",
			   r->resource, r->group, r->version);
	return c;
}

/* t[i] = v as Lua; t, v (a cJSON) and i are at 1, 2, 3. */
static int set_item(lua_State *L)
{
	ks_lua_push_json(L, lua_touserdata(L, 2));
	lua_rawseti(L, 1, (int)lua_tointeger(L, 3));
	return 0;
}

/*
 * t[i] = v (t at idx) as set_item does, protected: when the plugin's memory limit
 * refuses it, v is freed, then free_also, then the error is raised (nothing the host
 * made for the call leaks, however often a plugin retries).
 */
static void add_item(lua_State *L, int t, int i, cJSON *v, void *free_also)
{
	int rc;

	lua_pushcfunction(L, set_item);
	lua_pushvalue(L, t);
	lua_pushlightuserdata(L, v);
	lua_pushinteger(L, i);
	rc = lua_pcall(L, 3, 0, 0);
	cJSON_Delete(v);
	if (rc != 0) {
		free(free_also);
		lua_error(L);
	}
}

static void push_cached(lua_State *L, const struct ks_cache_obj *o)
{
	lua_createtable(L, 1, 0);
	add_item(L, lua_gettop(L), 1, cJSON_ParseWithLength(o->json, o->len), NULL);
	lua_rawgeti(L, -1, 1);
	lua_remove(L, -2);
}

int ks_lua_kube_get(lua_State *L)
{
	struct ks_lua_kube_res r;
	const struct ks_cache_obj *o;

	ks_lua_kube_check_res(L, 1, &r);
	o = ks_cache_get(cache_of(L, &r), luaL_optstring(L, 2, NULL), luaL_checkstring(L, 3));
	if (o)
		push_cached(L, o);
	else
		lua_pushnil(L);
	return 1;
}

static bool labels_match(lua_State *L, int labels, const cJSON *obj)
{
	const cJSON *have = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "labels");

	if (labels == 0)
		return true;
	lua_pushnil(L);
	while (lua_next(L, labels)) {
		const char *want = lua_tostring(L, -1);
		const char *got =
			cJSON_GetStringValue(cJSON_GetObjectItem(have, lua_tostring(L, -2)));

		lua_pop(L, 1);
		if (!want || !got || strcmp(want, got) != 0) {
			lua_pop(L, 1);
			return false;
		}
	}
	return true;
}

struct all {
	const struct ks_cache_obj **v;
	size_t n;
};

static void collect(const struct ks_cache_obj *o, void *data)
{
	struct all *a = data;

	a->v[a->n++] = o;
}

int ks_lua_kube_list(lua_State *L)
{
	const struct ks_cache_obj *const *objs = NULL;
	const char *ns = NULL, *owner = NULL, *sid = NULL;
	struct all all = { 0 };
	struct ks_cache *c;
	struct ks_lua_kube_res r;
	int labels = 0, n = 0, t;
	size_t count, i;

	ks_lua_kube_check_res(L, 1, &r);
	c = cache_of(L, &r);
	if (lua_istable(L, 2)) {
		lua_getfield(L, 2, "namespace");
		ns = lua_tostring(L, -1);
		lua_getfield(L, 2, "owner");
		owner = lua_tostring(L, -1);
		lua_getfield(L, 2, "status_id");
		sid = lua_tostring(L, -1);
		lua_getfield(L, 2, "labels");
		if (lua_istable(L, -1))
			labels = lua_gettop(L);
	}
	lua_newtable(L); /* before anything the host must free */
	t = lua_gettop(L);
	if (sid) {
		count = ks_cache_by_status_id(c, sid, &objs);
	} else if (owner) {
		count = ks_cache_by_owner(c, owner, &objs);
	} else if (ns) {
		count = ks_cache_by_namespace(c, ns, &objs);
	} else {
		all.v = ks_xcalloc(ks_cache_len(c) + 1, sizeof(*all.v));
		ks_cache_foreach(c, collect, &all);
		objs = all.v;
		count = all.n;
	}
	for (i = 0; i < count; i++) {
		cJSON *v = cJSON_ParseWithLength(objs[i]->json, objs[i]->len);
		const char *ons = ks_json_str(v, "metadata.namespace");

		if ((!ns || (ons && strcmp(ons, ns) == 0)) && labels_match(L, labels, v))
			add_item(L, t, ++n, v, all.v);
		else
			cJSON_Delete(v);
	}
	free(all.v);
	ks_lua_push_array_mt(L);
	lua_setmetatable(L, -2);
	return 1;
}

/* ks_lua_push_json as a lua_CFunction for ks_lua_push_capped: the cJSON at 1. */
