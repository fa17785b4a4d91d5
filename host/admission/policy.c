/* policy.c: one admission policy: its match, its Lua in a sandbox of its own. */
#include "admission/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "admission/policy_impl.h"

/* The call running now: ctx.list works only while its call runs. */
struct call {
	const struct ks_policy *p;
	const struct ks_policy_env *env;
	bool ok, want_table;
	int ref;
	char *msg;
	cJSON *out;
};
static struct call *current;

static int refuse_module(lua_State *L)
{
	return luaL_error(L, "module '%s' is not available to policies (no HTTP, no writes)",
			  luaL_optstring(L, 1, "?"));
}

static void done(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct call *c = data;
	lua_State *T = ks_lua_task_thread(t);
	const char *err = NULL;

	c->ok = ok;
	if (!ok) {
		c->msg = ks_xstrdup(msg);
		return;
	}
	if (nres < 1 || lua_isnil(T, -nres))
		return;
	if (lua_type(T, -nres) == LUA_TSTRING && !c->want_table) {
		c->msg = ks_xstrdup(lua_tostring(T, -nres));
	} else if (lua_istable(T, -nres) && c->want_table) {
		lua_pushvalue(T, -nres);
		c->ref = luaL_ref(T, LUA_REGISTRYINDEX);
	} else if (lua_istable(T, -nres)) {
		c->out = ks_lua_to_json(T, -nres, &err);
		if (!c->out) {
			c->ok = false;
			c->msg = ks_xasprintf("its result: %s", err);
		}
	} else {
		c->ok = false;
		c->msg = ks_xasprintf("returned a %s (%s expected)", luaL_typename(T, -nres),
				      c->want_table ? "a table" : "nil, a string or a table");
	}
}

/* Run the function under nargs arguments on p's state as a task, synchronously. */
static void run(struct ks_policy *p, int nargs, struct call *c)
{
	struct ks_lua_task *t;

	current = c;
	t = ks_lua_spawn(p->lua, nargs, done, c);
	if (t) /* it yielded: nothing a policy may call yields */
		ks_lua_task_cancel(t, "a policy may not wait for anything");
	current = NULL;
}

static char *load_reads(struct ks_policy *p, lua_State *L)
{
	size_t n = 0;

	lua_getfield(L, -1, "reads");
	if (!lua_isnil(L, -1) && !lua_istable(L, -1)) {
		lua_pop(L, 1);
		return ks_xstrdup("the table's reads must be a list of group/version/resource");
	}
	for (int i = 1; lua_istable(L, -1) && n < MAX_LIST; i++, n++) {
		const char *r;

		lua_rawgeti(L, -1, i);
		r = lua_tostring(L, -1);
		if (!r) {
			lua_pop(L, 1);
			break;
		}
		if (!strchr(r, '/') || strstr(r, "secrets") || strchr(r, '?')) {
			char *e =
				ks_xasprintf("reads[%d] %s: group/version/resource (v1/namespaces "
					     "for the core group), never secrets",
					     i, r);
			lua_pop(L, 2);
			return e;
		}
		p->reads[n] = ks_xstrdup(r);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return NULL;
}

/* Compile and run the source's top level; keep the table it returns. */
static char *load_lua(struct ks_policy *p, uv_loop_t *loop, const char *src)
{
	static const char *const refused[] = {
		"ks.core.http",	    "ks.core.kube", "ks.core.config",
		"ks.core.metrics",  "ks.core.helm", "ks.core.fault",
		"ks.core.transfer", "ks.core.amqp", "ks.core.time",
	};
	struct ks_lua_host host = { .loop = loop };
	struct ks_lua_limits lim = { KS_POLICY_MEMORY, KS_POLICY_INSTRUCTIONS, KS_POLICY_SECONDS,
				     0 };

	if (p->ns) {
		lim.instructions /= 10;
		lim.seconds /= 10;
	}
	struct call c = { .p = p, .want_table = true, .ref = LUA_NOREF };
	lua_State *L;
	char *err = NULL, *chunk = ks_xasprintf("=%s", p->id);

	p->lua = ks_lua_new(p->id, &host, &lim);
	L = ks_lua_state(p->lua);
	for (size_t i = 0; i < KS_ARRAY_SIZE(refused); i++)
		ks_lua_add_preload(L, refused[i], refuse_module);
	if (ks_lua_compile(p->lua, chunk, src, strlen(src), &err) != 0)
		goto out;
	run(p, 0, &c);
	if (!c.ok || c.ref == LUA_NOREF) {
		err = c.msg ? c.msg
			    : ks_xstrdup("spec.lua must return a table "
					 "{ validate = function, default = function }");
		goto out;
	}
	p->ref = c.ref;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref);
	lua_getfield(L, -1, "validate");
	p->has_validate = lua_isfunction(L, -1);
	lua_getfield(L, -2, "default");
	p->has_default = lua_isfunction(L, -1);
	lua_pop(L, 2);
	err = load_reads(p, L);
	lua_pop(L, 1);
	if (!err && !p->has_validate && !p->has_default)
		err = ks_xstrdup(
			"spec.lua: the table has neither validate nor default (functions)");
out:
	free(chunk);
	return err;
}

static const char *str(const cJSON *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = cJSON_GetObjectItemCaseSensitive(o, key);
		path = dot + 1;
	}
	o = o ? cJSON_GetObjectItemCaseSensitive(o, path) : NULL;
	return cJSON_IsString(o) ? o->valuestring : NULL;
}

struct ks_policy *ks_policy_new(uv_loop_t *loop, const cJSON *cr, char **err)
{
	struct ks_policy *p = ks_xcalloc(1, sizeof(*p));
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cr, "spec");
	const char *name = str(cr, "metadata.name"), *ns = str(cr, "metadata.namespace");
	const char *action = str(spec, "action"), *src = str(spec, "lua");

	*err = NULL;
	p->ref = LUA_NOREF;
	p->name = ks_xstrdup(name ? name : "?");
	p->ns = ns && *ns ? ks_xstrdup(ns) : NULL;
	p->id = p->ns ? ks_xasprintf("%s/%s", p->ns, p->name) : ks_xstrdup(p->name);
	if (!action || strcmp(action, "Deny") == 0)
		p->action = KS_POLICY_DENY;
	else if (strcmp(action, "Warn") == 0)
		p->action = KS_POLICY_WARN;
	else if (strcmp(action, "Audit") == 0)
		p->action = KS_POLICY_AUDIT;
	else
		*err = ks_xasprintf("spec.action: Deny, Warn or Audit, not %s", action);
	if (!*err)
		*err = ks_policy_parse_match(p, cJSON_GetObjectItemCaseSensitive(spec, "match"));
	if (!*err && !src)
		*err = ks_xstrdup("spec.lua: the policy's Lua source is missing (or spec.luaFrom)");
	if (!*err)
		*err = load_lua(p, loop, src);
	if (*err) {
		ks_policy_free(p);
		p = NULL;
	}
	return p;
}

void ks_policy_free(struct ks_policy *p)
{
	if (!p)
		return;
	ks_lua_free(p->lua);
	for (size_t i = 0; i < MAX_LIST; i++) {
		free(p->kinds[i]);
		free(p->names[i]);
		free(p->reads[i]);
	}
	cJSON_Delete(p->selector);
	free(p->id);
	free(p->name);
	free(p->ns);
	free(p);
}

const char *ks_policy_id(const struct ks_policy *p)
{
	return p->id;
}

const char *ks_policy_name(const struct ks_policy *p)
{
	return p->name;
}

enum ks_policy_action ks_policy_action(const struct ks_policy *p)
{
	return p->action;
}

bool ks_policy_has_default(const struct ks_policy *p)
{
	return p->has_default;
}

bool ks_policy_has_validate(const struct ks_policy *p)
{
	return p->has_validate;
}

const char *const *ks_policy_reads(const struct ks_policy *p)
{
	return (const char *const *)p->reads;
}

/* ctx.list(resource [, namespace]): the cached objects, read-only copies. */
static int ctx_list(lua_State *L)
{
	struct call *c = lua_touserdata(L, lua_upvalueindex(1));
	const char *res = luaL_checkstring(L, 1), *ns = luaL_optstring(L, 2, NULL), *err = NULL;
	cJSON *items;
	bool allowed = false;

	if (c != current)
		return luaL_error(L, "ctx.list: ctx is valid only during its call");
	for (size_t i = 0; c->p->reads[i]; i++)
		allowed |= strcmp(c->p->reads[i], res) == 0;
	if (!allowed)
		return luaL_error(L, "ctx.list: %s is not in the policy's reads", res);
	if (c->p->ns && ns && strcmp(ns, c->p->ns) != 0)
		return luaL_error(L, "ctx.list: a Policy reads its own namespace (%s) only",
				  c->p->ns);
	if (c->p->ns)
		ns = c->p->ns;
	items = c->env && c->env->list ? c->env->list(c->env->data, res, ns, &err) : NULL;
	if (!items) {
		lua_pushnil(L);
		lua_pushstring(L, err ? err : "no cache of that resource");
		return 2;
	}
	ks_lua_push_json(L, items);
	cJSON_Delete(items);
	return 1;
}

static void push_field(lua_State *L, const cJSON *o, const char *key, const char *name)
{
	const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

	if (v)
		ks_lua_push_json(L, v);
	else
		lua_newtable(L);
	lua_setfield(L, -2, name);
}

static void push_ctx(lua_State *L, struct call *c, const struct ks_policy_req *r)
{
	const cJSON *meta = r->namespace_obj
				    ? cJSON_GetObjectItemCaseSensitive(r->namespace_obj, "metadata")
				    : NULL;

	lua_newtable(L);
	lua_pushstring(L, r->operation);
	lua_setfield(L, -2, "operation");
	lua_pushstring(L, r->kind);
	lua_setfield(L, -2, "kind");
	lua_newtable(L); /* namespace */
	lua_pushstring(L, r->ns);
	lua_setfield(L, -2, "name");
	push_field(L, meta, "labels", "labels");
	push_field(L, meta, "annotations", "annotations");
	lua_setfield(L, -2, "namespace");
	lua_newtable(L); /* user */
	lua_pushstring(L, str(r->user, "username") ? str(r->user, "username") : "");
	lua_setfield(L, -2, "username");
	push_field(L, r->user, "groups", "groups");
	lua_setfield(L, -2, "user");
	lua_pushlightuserdata(L, c);
	lua_pushcclosure(L, ctx_list, 1);
	lua_setfield(L, -2, "list");
}

static void push_obj(lua_State *L, const cJSON *o)
{
	if (o)
		ks_lua_push_json(L, o);
	else
		lua_pushnil(L);
}

/* Call the table's fn with obj [, old], ctx. */
static int call(struct ks_policy *p, const char *fn, const struct ks_policy_req *r,
		const struct ks_policy_env *env, struct call *c)
{
	lua_State *L = ks_lua_state(p->lua);
	int n = 0;

	c->p = p;
	c->env = env;
	c->ref = LUA_NOREF;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref);
	lua_getfield(L, -1, fn);
	lua_remove(L, -2);
	push_obj(L, r->object ? r->object : r->old);
	n++;
	if (strcmp(fn, "validate") == 0) {
		push_obj(L, r->old);
		n++;
	}
	push_ctx(L, c, r);
	run(p, n + 1, c);
	if (!c->ok) {
		cJSON_Delete(c->out);
		c->out = NULL;
		return -EINVAL;
	}
	return 0;
}

int ks_policy_validate(struct ks_policy *p, const struct ks_policy_req *r,
		       const struct ks_policy_env *env, char **msg)
{
	struct call c = { 0 };
	int rc = p->has_validate ? call(p, "validate", r, env, &c) : 0;

	cJSON_Delete(c.out); /* a table from validate: taken as no denial */
	*msg = c.msg;
	return rc;
}

int ks_policy_default(struct ks_policy *p, const struct ks_policy_req *r,
		      const struct ks_policy_env *env, cJSON **fields, char **msg)
{
	struct call c = { 0 };
	int rc = p->has_default ? call(p, "default", r, env, &c) : 0;

	*fields = NULL;
	*msg = NULL;
	if (rc) {
		*msg = c.msg;
	} else if (c.msg) {
		*msg = ks_xasprintf("default returned a string (%s); a table of fields expected",
				    c.msg);
		free(c.msg);
		rc = -EINVAL;
	} else {
		*fields = c.out;
	}
	return rc;
}
