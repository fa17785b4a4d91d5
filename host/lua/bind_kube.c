/*
 * bind_kube.c: ks.core.kube: reads from the host's caches (no yield; bind_kube_read.c)
 * and writes through the API server (the task yields until it answers; here).
 *
 *   kube.get(res, ns, name)            -> obj | nil
 *   kube.list(res, {namespace=, labels={k=v}, owner=uid, status_id=id}) -> { obj... }
 *   (status_id: the objects whose status.id is id, through the cache's index)
 *   kube.fetch(res, ns, name)          -> obj | nil, err        (live GET)
 *   kube.fetch_list(res, ns, {labels={k=v}}) -> List | nil, err  (live LIST of one
 *                                         namespace: kinds no cache holds, as pods)
 *   kube.apply(obj, {force=, subresource=, field_manager=}) -> obj | nil, err
 *   kube.create(obj)                   -> obj | nil, err
 *   kube.patch(res, ns, name, patch, {type="merge"|"json"|"strategic", subresource=})
 *   kube.delete(res, ns, name, {uid=, propagation=}) -> true | nil, err
 *   kube.batch(verb, objs, opts)       -> many fetches or applies at once (bind_kube_batch.c)
 *   kube.discover(group_version)       -> APIResourceList | nil, err (live GET of
 *                                         /api/v1 or /apis/GROUP/VERSION; 404: not served)
 *
 * res is { group=, version=, resource= } or { group=, version=, kind= } (the plural is
 * derived) or an object's { apiVersion=, kind= }.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cache.h"
#include "json.h"
#include "ks.h"
#include "kube.h"
#include "lua/bind.h"
#include "lua/bind_kube.h"
#include "lua/engine.h"
#include "lua/fake.h"

#define FIELD_MANAGER "kupenstack"

struct kube_op {
	struct ks_lua_op op;
	bool dead;    /* the task was cancelled: drop the answer */
	bool want_ok; /* push true rather than the body (delete) */
};

void ks_lua_kube_plural(const char *kind, char *out, size_t cap)
{
	size_t n = strlen(kind), i;

	if (n + 3 >= cap)
		n = cap - 4;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)kind[i]);
	out[n] = '\0';
	if (n == 0)
		return;
	if (out[n - 1] == 's' || out[n - 1] == 'x' || (n > 1 && strcmp(out + n - 2, "ch") == 0))
		strcpy(out + n, "es");
	else if (out[n - 1] == 'y' && n > 1 && !strchr("aeiou", out[n - 2]))
		strcpy(out + n - 1, "ies");
	else
		strcpy(out + n, "s");
}

void ks_lua_kube_check_res(lua_State *L, int idx, struct ks_lua_kube_res *r)
{
	const char *api, *slash;

	luaL_checktype(L, idx, LUA_TTABLE);
	memset(r, 0, sizeof(*r));
	lua_getfield(L, idx, "apiVersion");
	api = lua_tostring(L, -1);
	if (api) {
		slash = strchr(api, '/');
		if (slash) {
			snprintf(r->group, sizeof(r->group), "%.*s", (int)(slash - api), api);
			snprintf(r->version, sizeof(r->version), "%s", slash + 1);
		} else {
			snprintf(r->version, sizeof(r->version), "%s", api);
		}
	} else {
		lua_getfield(L, idx, "group");
		lua_getfield(L, idx, "version");
		snprintf(r->group, sizeof(r->group), "%s", luaL_optstring(L, -2, ""));
		if (!lua_isstring(L, -1))
			luaL_error(L, "kube: the resource needs 'version' (or 'apiVersion')");
		snprintf(r->version, sizeof(r->version), "%s", lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	lua_getfield(L, idx, "resource");
	lua_getfield(L, idx, "kind");
	if (lua_isstring(L, -2))
		snprintf(r->resource, sizeof(r->resource), "%s", lua_tostring(L, -2));
	else if (lua_isstring(L, -1))
		ks_lua_kube_plural(lua_tostring(L, -1), r->resource, sizeof(r->resource));
	else
		luaL_error(L, "kube: the resource needs 'resource' or 'kind'");
	lua_pop(L, 2);
	r->r.group = r->group;
	r->r.version = r->version;
	r->r.resource = r->resource;
	r->r.namespaced = true;
}

static int push_body(lua_State *L)
{
	ks_lua_push_json(L, lua_touserdata(L, 1));
	return 1;
}

/* The API's answer, pushed on the task and resumed; dropped if the task is gone. */
static void answered(struct ks_kube_result *res, void *data)
{
	struct kube_op *k = data;
	lua_State *co;
	int n = 1;

	if (k->dead) {
		free(k);
		return;
	}
	co = ks_lua_op_thread(&k->op);
	if (!ks_kube_ok(res))
		n = ks_lua_fail(co, res->code, res->reason, res->message);
	else if (k->want_ok || !res->body)
		lua_pushboolean(co, 1);
	else if (ks_lua_push_capped(&k->op, push_body, (void *)res->body) != 0)
		n = ks_lua_fail(co, 0, "MemoryLimit",
				"the API's answer does not fit under the plugin's memory limit");
	ks_lua_op_resume(&k->op, n);
	free(k);
}

static void cancel(struct ks_lua_op *op)
{
	KS_CONTAINER_OF(op, struct kube_op, op)->dead = true;
}

static struct ks_kube *kube_of(lua_State *L)
{
	struct ks_kube *k = ks_lua_host(ks_lua_from(L))->kube;

	if (!k)
		luaL_error(L, "kube: this host has no Kubernetes connection");
	ks_lua_check_yieldable(L);
	return k;
}

/* A fake's answer (lua/fake.h), pushed from the loop as answered() would. */
struct fake_answer {
	struct ks_lua_fake_reply r;
	bool want_ok;
};

static int push_fake(lua_State *co, void *data)
{
	struct fake_answer *a = data;

	if (a->r.status < 200 || a->r.status >= 300)
		return ks_lua_fail(co, a->r.status, a->r.reason ? a->r.reason : "Error",
				   a->r.message ? a->r.message : "");
	if (a->want_ok || !a->r.json)
		lua_pushboolean(co, 1);
	else
		ks_lua_push_json(co, a->r.json);
	return 1;
}

static void drop_fake(void *data)
{
	ks_lua_fake_reply_deinit(&((struct fake_answer *)data)->r);
	free(data);
}

/* Hand call to the host's fake: true (and *ret is the yield) if it answers, false to
 * send it to the API server. Checks that L may yield either way. */
static bool faked(lua_State *L, const struct ks_lua_fake_kube *call, bool want_ok, int *ret)
{
	struct ks_lua_fake *f = ks_lua_host(ks_lua_from(L))->fake;
	struct fake_answer *a;

	ks_lua_check_yieldable(L);
	if (!f || !f->kube)
		return false;
	a = ks_xcalloc(1, sizeof(*a));
	a->want_ok = want_ok;
	if (!f->kube(f, call, &a->r)) {
		drop_fake(a);
		return false;
	}
	*ret = ks_lua_defer(L, push_fake, drop_fake, a);
	return true;
}

static struct kube_op *new_op(void)
{
	struct kube_op *k = ks_xcalloc(1, sizeof(*k));

	k->op.cancel = cancel;
	return k;
}

/* The value at idx as JSON; raises with the reason when it has no JSON form. */
static cJSON *check_json(lua_State *L, int idx, const char *what)
{
	const char *err = NULL;
	cJSON *v;

	luaL_checktype(L, idx, LUA_TTABLE);
	v = ks_lua_to_json(L, idx, &err);
	if (!v)
		luaL_error(L, "kube: %s: %s", what, err);
	return v;
}

static int fetch(lua_State *L)
{
	const char *ns = luaL_optstring(L, 2, NULL), *name = luaL_checkstring(L, 3);
	struct kube_op *k;
	struct ks_lua_kube_res r;
	int ret;

	ks_lua_kube_check_res(L, 1, &r);
	if (faked(L,
		  &(struct ks_lua_fake_kube){ .verb = "get", .res = &r.r, .ns = ns, .name = name },
		  false, &ret))
		return ret;
	k = new_op();
	ks_kube_get(kube_of(L), &r.r, ns, name, answered, k);
	return ks_lua_op_start(L, &k->op);
}

/* kube.fetch_list(res, ns, {labels = {k = v}}): a live LIST of namespace ns (every page),
 * for kinds the host does not cache (a service's pods). */
static int fetch_list(lua_State *L)
{
	const char *ns = luaL_checkstring(L, 2);
	struct ks_buf sel;
	cJSON *labels;
	struct kube_op *k;
	struct ks_lua_kube_res r;
	int ret;

	ks_lua_kube_check_res(L, 1, &r);
	ks_buf_init(&sel);
	labels = cJSON_CreateObject();
	if (lua_istable(L, 3)) {
		lua_getfield(L, 3, "labels");
		if (lua_istable(L, -1)) {
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				if (lua_type(L, -2) != LUA_TSTRING ||
				    lua_type(L, -1) != LUA_TSTRING) {
					cJSON_Delete(labels);
					ks_buf_deinit(&sel);
					return luaL_error(L, "kube.fetch_list: labels must map "
							     "strings to strings");
				}
				ks_buf_printf(&sel, "%s%s=%s", sel.len ? "," : "",
					      lua_tostring(L, -2), lua_tostring(L, -1));
				cJSON_AddStringToObject(labels, lua_tostring(L, -2),
							lua_tostring(L, -1));
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	if (faked(L,
		  &(struct ks_lua_fake_kube){
			  .verb = "list", .res = &r.r, .ns = ns, .body = labels },
		  false, &ret)) {
		cJSON_Delete(labels);
		ks_buf_deinit(&sel);
		return ret;
	}
	cJSON_Delete(labels);
	k = new_op();
	ks_kube_list(kube_of(L), &r.r, ns,
		     &(struct ks_kube_list_opts){ .label_selector = sel.len ? sel.data : NULL },
		     answered, k);
	ks_buf_deinit(&sel);
	return ks_lua_op_start(L, &k->op);
}

static const char *meta(lua_State *L, int idx, const char *field)
{
	const char *v;

	lua_getfield(L, idx, "metadata");
	if (!lua_istable(L, -1))
		luaL_error(L, "kube: the object has no metadata");
	lua_getfield(L, -1, field);
	v = lua_tostring(L, -1);
	lua_pop(L, 2); /* the object still holds the string */
	return v;
}

static int apply(lua_State *L)
{
	const char *name, *ns, *sub = NULL, *manager = FIELD_MANAGER;
	struct kube_op *k;
	bool force = false;
	struct ks_lua_kube_res r;
	cJSON *obj;
	int ret;

	ks_lua_kube_check_res(L, 1, &r);
	name = meta(L, 1, "name");
	ns = meta(L, 1, "namespace");
	if (!name)
		return luaL_error(L, "kube.apply: the object has no metadata.name");
	if (lua_istable(L, 2)) {
		lua_getfield(L, 2, "force");
		force = lua_toboolean(L, -1);
		lua_getfield(L, 2, "subresource");
		sub = lua_tostring(L, -1);
		lua_getfield(L, 2, "field_manager");
		manager = luaL_optstring(L, -1, FIELD_MANAGER);
	}
	obj = check_json(L, 1, "apply");
	if (faked(L,
		  &(struct ks_lua_fake_kube){ .verb = "apply",
					      .res = &r.r,
					      .ns = ns,
					      .name = name,
					      .sub = sub,
					      .body = obj,
					      .force = force },
		  false, &ret)) {
		cJSON_Delete(obj);
		return ret;
	}
	k = new_op();
	ks_kube_apply(kube_of(L), &r.r, ns, name, sub, obj, manager, force, answered, k);
	cJSON_Delete(obj);
	return ks_lua_op_start(L, &k->op);
}

static int create(lua_State *L)
{
	struct kube_op *k;
	struct ks_lua_kube_res r;
	cJSON *obj;
	int ret;

	ks_lua_kube_check_res(L, 1, &r);
	obj = check_json(L, 1, "create");
	if (faked(L,
		  &(struct ks_lua_fake_kube){ .verb = "create",
					      .res = &r.r,
					      .ns = meta(L, 1, "namespace"),
					      .name = meta(L, 1, "name"),
					      .body = obj },
		  false, &ret)) {
		cJSON_Delete(obj);
		return ret;
	}
	k = new_op();
	ks_kube_create(kube_of(L), &r.r, meta(L, 1, "namespace"), obj, answered, k);
	cJSON_Delete(obj);
	return ks_lua_op_start(L, &k->op);
}

static int patch(lua_State *L)
{
	static const char *const types[] = { "merge", "json", "strategic", NULL };
	static const enum ks_kube_patch kinds[] = { KS_PATCH_MERGE, KS_PATCH_JSON,
						    KS_PATCH_STRATEGIC };
	const char *ns = luaL_optstring(L, 2, NULL), *name = luaL_checkstring(L, 3), *sub = NULL;
	int type = 0, ret;
	struct kube_op *k;
	struct ks_lua_kube_res r;
	cJSON *p;

	ks_lua_kube_check_res(L, 1, &r);
	if (lua_istable(L, 5)) {
		lua_getfield(L, 5, "type");
		type = luaL_checkoption(L, -1, "merge", types);
		lua_getfield(L, 5, "subresource");
		sub = lua_tostring(L, -1);
	}
	p = check_json(L, 4, "patch");
	if (faked(L,
		  &(struct ks_lua_fake_kube){ .verb = "patch",
					      .res = &r.r,
					      .ns = ns,
					      .name = name,
					      .sub = sub,
					      .patch_type = types[type],
					      .body = p },
		  false, &ret)) {
		cJSON_Delete(p);
		return ret;
	}
	k = new_op();
	ks_kube_patch(kube_of(L), &r.r, ns, name, sub, kinds[type], p, answered, k);
	cJSON_Delete(p);
	return ks_lua_op_start(L, &k->op);
}

static int delete (lua_State *L)
{
	const char *ns = luaL_optstring(L, 2, NULL), *name = luaL_checkstring(L, 3);
	struct ks_kube_delete_opts o = { 0 };
	struct kube_op *k;
	struct ks_lua_kube_res r;
	int ret;

	ks_lua_kube_check_res(L, 1, &r);
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "uid");
		o.uid = lua_tostring(L, -1);
		lua_getfield(L, 4, "propagation");
		o.propagation = lua_tostring(L, -1);
	}
	if (faked(L,
		  &(struct ks_lua_fake_kube){ .verb = "delete",
					      .res = &r.r,
					      .ns = ns,
					      .name = name,
					      .uid = o.uid,
					      .propagation = o.propagation },
		  true, &ret))
		return ret;
	k = new_op();
	k->want_ok = true;
	ks_kube_delete(kube_of(L), &r.r, ns, name, &o, answered, k);
	return ks_lua_op_start(L, &k->op);
}

/* kube.discover("policy/v1"): what the API server serves of one group/version. */
static int discover(lua_State *L)
{
	const char *gv = luaL_checkstring(L, 1), *slash = strchr(gv, '/');
	struct kube_op *k;
	struct ks_lua_kube_res r;
	char *path;
	int ret;

	memset(&r, 0, sizeof(r));
	if (slash)
		snprintf(r.group, sizeof(r.group), "%.*s", (int)(slash - gv), gv);
	snprintf(r.version, sizeof(r.version), "%s", slash ? slash + 1 : gv);
	if (!*r.version || strchr(r.version, '/') || strchr(r.group, '?') || strchr(r.version, '?'))
		return luaL_error(L, "kube.discover: '%s' is not a group/version", gv);
	r.r.group = r.group;
	r.r.version = r.version;
	r.r.resource = r.resource;
	if (faked(L, &(struct ks_lua_fake_kube){ .verb = "get", .res = &r.r }, false, &ret))
		return ret;
	k = new_op();
	path = *r.group ? ks_xasprintf("/apis/%s/%s", r.group, r.version)
			: ks_xasprintf("/api/%s", r.version);
	ks_kube_request(kube_of(L), "GET", path, NULL, NULL, answered, k);
	free(path);
	return ks_lua_op_start(L, &k->op);
}

int ks_lua_open_kube(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "get", ks_lua_kube_get },
		{ "list", ks_lua_kube_list },
		{ "fetch", fetch },
		{ "fetch_list", fetch_list },
		{ "apply", apply },
		{ "create", create },
		{ "patch", patch },
		{ "delete", delete },
		{ "discover", discover },
		{ "batch", ks_lua_kube_batch },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
