/*
 * bind_helm.c: ks.core.helm.render(chart, values, opts): the real `helm template`
 * through host/helm.c (a child process on the loop, results cached); the calling task
 * yields until helm is done or the cache answers.
 *
 *   objs, err = helm.render("charts/nova", { replicas = 3 }, {
 *           release = "nova",          -- default "kupenstack"
 *           namespace = "openstack", kube_version = "1.29.0",
 *           api_versions = { "monitoring.coreos.com/v1" },
 *           timeout = 60,              -- seconds, at most what the task has left
 *           include_crds = false })
 *   objs = { { apiVersion = "v1", kind = "ConfigMap", ... }, ... }    -- an array
 *   err = { code = <helm's exit status, or 0>, message = "...",
 *           reason = "HelmFailed" | "Timeout" | "ChartError" | "SpawnError" | ... }
 *
 * The values are passed to helm as JSON, object keys sorted so that equal tables
 * hit the same cache entry whatever order they were built in.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "helm.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"

#define MAX_API_VERSIONS 64

struct helm_op {
	struct ks_lua_op op;
	struct ks_helm_req *req;
};

static void done(const struct ks_helm_result *res, void *data)
{
	struct helm_op *h = data;
	lua_State *co = ks_lua_op_thread(&h->op);
	int n = 1;

	if (res->err)
		n = ks_lua_fail(co, res->status, res->reason, res->message);
	else
		ks_lua_push_json(co, res->objects);
	ks_lua_op_resume(&h->op, n);
	free(h);
}

static void cancel(struct ks_lua_op *op)
{
	struct helm_op *h = KS_CONTAINER_OF(op, struct helm_op, op);

	ks_helm_cancel(h->req);
	free(h);
}

/* Sort every object's keys, recursively (insertion sort: values are small). */
static void sort_keys(cJSON *v)
{
	cJSON *c, *next, *sorted = NULL, *last = NULL, **pp;

	for (c = v->child; c; c = c->next)
		sort_keys(c);
	if (!cJSON_IsObject(v))
		return;
	for (c = v->child; c; c = next) {
		next = c->next;
		for (pp = &sorted; *pp && strcmp((*pp)->string, c->string) <= 0; pp = &(*pp)->next)
			;
		c->next = *pp;
		*pp = c;
	}
	for (c = sorted; c; last = c, c = c->next)
		c->prev = last;
	if (sorted)
		sorted->prev = last; /* cJSON keeps the tail in the head's prev */
	v->child = sorted;
}

/* The values table at idx as canonical JSON text (the caller frees it); raises on a
 * value with no JSON form, before allocating anything it would leak. */
static char *values_json(lua_State *L, int idx)
{
	const char *why = NULL;
	cJSON *v = ks_lua_to_json(L, idx, &why);
	char *text;

	if (v && !cJSON_IsObject(v)) {
		cJSON_Delete(v);
		v = NULL;
		why = "a table of names, not an array";
	}
	if (!v)
		luaL_error(L, "helm.render: values must be %s", why);
	sort_keys(v);
	text = cJSON_PrintUnformatted(v);
	cJSON_Delete(v);
	ks_require(text != NULL);
	return text;
}

static const char *opt_string(lua_State *L, int opts, const char *k)
{
	const char *v;

	lua_getfield(L, opts, k);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "helm.render: opts.%s must be a string", k);
	v = lua_tostring(L, -1);
	lua_pop(L, 1); /* the opts table still holds it */
	return v;
}

/* opts.api_versions into api (NULL-terminated), the strings held by the table. */
static void api_versions(lua_State *L, int opts, const char **api)
{
	int i, n;

	lua_getfield(L, opts, "api_versions");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "helm.render: opts.api_versions must be a list of strings");
	n = (int)lua_objlen(L, -1);
	if (n > MAX_API_VERSIONS)
		luaL_error(L, "helm.render: more than %d api_versions", MAX_API_VERSIONS);
	for (i = 0; i < n; i++) {
		lua_rawgeti(L, -1, i + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "helm.render: opts.api_versions must be a list of strings");
		api[i] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	api[n] = NULL;
	lua_pop(L, 1);
}

/* Read opts (stack index 3, or none) into o; raises on a caller bug. */
static void read_opts(lua_State *L, struct ks_helm_opts *o, const char **api)
{
	double left = ks_lua_deadline(L) - (double)ks_now_ns() / 1e9;

	o->timeout = 60;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		o->release = opt_string(L, 3, "release");
		o->namespace = opt_string(L, 3, "namespace");
		o->kube_version = opt_string(L, 3, "kube_version");
		api_versions(L, 3, api);
		lua_getfield(L, 3, "timeout");
		o->timeout = luaL_optnumber(L, -1, 60);
		lua_getfield(L, 3, "include_crds");
		o->include_crds = lua_toboolean(L, -1);
		lua_pop(L, 2);
		if (o->timeout <= 0 || o->timeout > 86400)
			luaL_error(L, "helm.render: opts.timeout must be in (0, 86400] seconds");
	}
	if (left > 0 && left < o->timeout)
		o->timeout = left;
	o->api_versions = api;
}

static int render(lua_State *L)
{
	struct ks_lua *e = ks_lua_from(L);
	const char *api[MAX_API_VERSIONS + 1] = { NULL };
	struct ks_helm_opts o = { 0 };
	struct helm_op *h;
	const char *why;
	char *values = NULL;

	o.chart = luaL_checkstring(L, 1);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	read_opts(L, &o, api);
	o.helm = ks_lua_host(e)->helm;
	why = ks_helm_check(&o);
	if (why)
		return luaL_error(L, "helm.render: %s", why);
	ks_lua_check_yieldable(L);
	if (!lua_isnoneornil(L, 2))
		values = values_json(L, 2);
	o.values = values;
	h = ks_xcalloc(1, sizeof(*h));
	h->op.cancel = cancel;
	h->req = ks_helm_render(ks_lua_host(e)->loop, &o, done, h);
	free(values);
	ks_require(h->req != NULL); /* ks_helm_check passed */
	return ks_lua_op_start(L, &h->op);
}

int ks_lua_open_helm(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "render", render },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
