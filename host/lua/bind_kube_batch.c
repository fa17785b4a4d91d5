/*
 * bind_kube_batch.c: kube.batch (part of ks.core.kube): many live GETs or server-side
 * applies in flight at once, at most `concurrency` at a time, the task yielding until every
 * one has answered.
 *
 *   results = kube.batch("fetch" | "apply", objs, {concurrency=, force=, field_manager=})
 *   results[i] = { object = obj } | { code =, reason =, message = }   -- in the order of objs
 *
 * Each of objs is an object with apiVersion, kind and metadata.name (metadata.namespace
 * for a namespaced one); "fetch" GETs it, "apply" applies it. concurrency: default 4, at
 * most 32. Under a fake (`plugin test`, `plugin run --dry-run`) it answers
 * nil, {reason = "Unsupported"}: make the calls one at a time there. Raises on a malformed
 * argument (nothing is sent then).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "json.h"
#include "ks.h"
#include "kube.h"
#include "lua/bind.h"
#include "lua/engine.h"

#define FIELD_MANAGER "kupenstack"
#define MAX_CONCURRENCY 32

struct item {
	char group[128], version[64], resource[128];
	char *ns, *name;
	cJSON *body; /* apply: the object */
};

struct batch {
	struct ks_lua_op op;
	struct ks_kube *kube;
	struct item *items;
	cJSON *results; /* an array of n, each null until answered */
	char *manager;
	int n, next, inflight, answered, concurrency;
	bool apply, force, dead;
};

struct call {
	struct batch *b;
	int i;
};

static void batch_free(struct batch *b)
{
	int i;

	for (i = 0; i < b->n; i++) {
		free(b->items[i].ns);
		free(b->items[i].name);
		cJSON_Delete(b->items[i].body);
	}
	free(b->items);
	cJSON_Delete(b->results);
	free(b->manager);
	free(b);
}

static void start_next(struct batch *b);

static int push_results(lua_State *L)
{
	ks_lua_push_json(L, lua_touserdata(L, 1));
	return 1;
}

static cJSON *outcome(const struct ks_kube_result *res)
{
	cJSON *o = cJSON_CreateObject();

	if (ks_kube_ok(res)) {
		cJSON_AddItemToObject(o, "object",
				      res->body ? cJSON_Duplicate(res->body, 1)
						: cJSON_CreateTrue());
	} else {
		cJSON_AddNumberToObject(o, "code", (double)res->code);
		cJSON_AddStringToObject(o, "reason", res->reason ? res->reason : "Error");
		cJSON_AddStringToObject(o, "message", res->message ? res->message : "");
	}
	return o;
}

static void answered(struct ks_kube_result *res, void *data)
{
	struct call *c = data;
	struct batch *b = c->b;
	lua_State *co;
	int n = 1;

	b->inflight--;
	if (!b->dead)
		cJSON_ReplaceItemInArray(b->results, c->i, outcome(res));
	free(c);
	if (b->dead) {
		if (b->inflight == 0)
			batch_free(b);
		return;
	}
	b->answered++;
	if (b->answered < b->n) {
		start_next(b);
		return;
	}
	co = ks_lua_op_thread(&b->op);
	if (ks_lua_push_capped(&b->op, push_results, b->results) != 0)
		n = ks_lua_fail(co, 0, "MemoryLimit",
				"the API's answers do not fit under the plugin's memory limit");
	ks_lua_op_resume(&b->op, n);
	batch_free(b);
}

static void start_next(struct batch *b)
{
	while (b->inflight < b->concurrency && b->next < b->n) {
		struct item *it = &b->items[b->next];
		struct ks_kube_res r = { .group = it->group,
					 .version = it->version,
					 .resource = it->resource,
					 .namespaced = true };
		struct call *c = ks_xcalloc(1, sizeof(*c));

		c->b = b;
		c->i = b->next++;
		b->inflight++;
		if (b->apply)
			ks_kube_apply(b->kube, &r, it->ns, it->name, NULL, it->body, b->manager,
				      b->force, answered, c);
		else
			ks_kube_get(b->kube, &r, it->ns, it->name, answered, c);
	}
}

static void cancel(struct ks_lua_op *op)
{
	struct batch *b = KS_CONTAINER_OF(op, struct batch, op);

	b->dead = true;
	if (b->inflight == 0)
		batch_free(b);
}

static const char *field(lua_State *L, int idx, const char *name)
{
	const char *v;

	lua_getfield(L, idx, name);
	v = lua_tostring(L, -1);
	lua_pop(L, 1); /* the table still holds the string */
	return v;
}

/* Fill it from the object at idx; raises (naming the item) when it is malformed. */
static void check_item(lua_State *L, int idx, int i, bool apply, struct item *it)
{
	const char *api = field(L, idx, "apiVersion"), *kind = field(L, idx, "kind"), *slash;
	const char *err = NULL;

	if (!api || !kind)
		luaL_error(L, "kube.batch: item %d needs apiVersion and kind", i);
	slash = strchr(api, '/');
	if (slash)
		snprintf(it->group, sizeof(it->group), "%.*s", (int)(slash - api), api);
	snprintf(it->version, sizeof(it->version), "%s", slash ? slash + 1 : api);
	ks_lua_kube_plural(kind, it->resource, sizeof(it->resource));
	lua_getfield(L, idx, "metadata");
	if (!lua_istable(L, -1) || !field(L, lua_gettop(L), "name"))
		luaL_error(L, "kube.batch: item %d needs metadata.name", i);
	it->name = ks_xstrdup(field(L, lua_gettop(L), "name"));
	if (field(L, lua_gettop(L), "namespace"))
		it->ns = ks_xstrdup(field(L, lua_gettop(L), "namespace"));
	lua_pop(L, 1);
	if (apply) {
		it->body = ks_lua_to_json(L, idx, &err);
		if (!it->body)
			luaL_error(L, "kube.batch: item %d: %s", i, err);
	}
}

/* Parse the items at 2 into b->items; protected (check_items_p), so that b is freed on a
 * malformed one. */
static int check_items_p(lua_State *L)
{
	struct batch *b = lua_touserdata(L, 3);
	int i;

	for (i = 0; i < b->n; i++) {
		lua_rawgeti(L, 2, i + 1);
		if (!lua_istable(L, -1))
			luaL_error(L, "kube.batch: item %d is not a table", i + 1);
		check_item(L, lua_gettop(L), i + 1, b->apply, &b->items[i]);
		lua_pop(L, 1);
	}
	return 0;
}

int ks_lua_kube_batch(lua_State *L)
{
	static const char *const verbs[] = { "fetch", "apply", NULL };
	const struct ks_lua_host *h = ks_lua_host(ks_lua_from(L));
	struct batch *b;
	int i;

	if (!h->fake)
		ks_lua_check_yieldable(L); /* before anything is allocated */
	b = ks_xcalloc(1, sizeof(*b));
	b->apply = luaL_checkoption(L, 1, NULL, verbs) == 1;
	luaL_checktype(L, 2, LUA_TTABLE);
	b->n = (int)lua_objlen(L, 2);
	b->concurrency = 4;
	b->manager = ks_xstrdup(FIELD_MANAGER);
	if (lua_istable(L, 3)) {
		lua_getfield(L, 3, "concurrency");
		if (lua_isnumber(L, -1))
			b->concurrency = (int)lua_tonumber(L, -1);
		lua_getfield(L, 3, "force");
		b->force = lua_toboolean(L, -1);
		lua_getfield(L, 3, "field_manager");
		if (lua_isstring(L, -1)) {
			free(b->manager);
			b->manager = ks_xstrdup(lua_tostring(L, -1));
		}
		lua_pop(L, 3);
	}
	b->concurrency = b->concurrency < 1 ? 1 : KS_MIN(b->concurrency, MAX_CONCURRENCY);
	b->items = ks_xcalloc((size_t)b->n + 1, sizeof(*b->items));
	lua_settop(L, 2);
	lua_pushcfunction(L, check_items_p);
	lua_insert(L, 1);
	lua_pushlightuserdata(L, b);
	if (lua_pcall(L, 3, 0, 0) != 0) {
		batch_free(b);
		return lua_error(L);
	}
	if (h->fake) {
		batch_free(b);
		return ks_lua_fail(L, 0, "Unsupported", "kube.batch is not offered under a fake");
	}
	if (!h->kube) {
		batch_free(b);
		return luaL_error(L, "kube: this host has no Kubernetes connection");
	}
	b->kube = h->kube;
	b->results = cJSON_CreateArray();
	for (i = 0; i < b->n; i++)
		cJSON_AddItemToArray(b->results, cJSON_CreateNull());
	b->op.cancel = cancel;
	if (b->n == 0) {
		lua_newtable(L);
		batch_free(b);
		return 1;
	}
	start_next(b);
	return ks_lua_op_start(L, &b->op);
}
