/* policy.c: one admission policy: its match, its Lua in a sandbox of its own. */
#include "admission/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"

#define MAX_LIST 64

struct ks_policy {
	char *id, *name, *ns; /* ns NULL: a ClusterPolicy */
	enum ks_policy_action action;
	char *kinds[MAX_LIST], *names[MAX_LIST], *reads[MAX_LIST + 1];
	cJSON *selector; /* matchLabels, or NULL */
	unsigned ops;	 /* bit per operation */
	struct ks_lua *lua;
	int ref; /* the table the source returned */
	bool has_validate, has_default;
};

static const char *const op_names[] = { "CREATE", "UPDATE", "DELETE", "CONNECT" };

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

static unsigned op_bit(const char *op)
{
	for (size_t i = 0; i < KS_ARRAY_SIZE(op_names); i++) {
		if (strcmp(op, op_names[i]) == 0)
			return 1u << i;
	}
	return 0;
}

/* Copy the string array at field of obj into out (MAX_LIST); NULL or an error text. */
static char *strings(const cJSON *obj, const char *field, char **out)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, field), *v;
	size_t n = 0;

	if (!a)
		return NULL;
	if (!cJSON_IsArray(a))
		return ks_xasprintf("%s must be a list of strings", field);
	cJSON_ArrayForEach(v, a)
	{
		if (!cJSON_IsString(v) || !*v->valuestring)
			return ks_xasprintf("%s[%zu] must be a non-empty string", field, n);
		if (n == MAX_LIST)
			return ks_xasprintf("%s: at most %d entries", field, MAX_LIST);
		out[n++] = ks_xstrdup(v->valuestring);
	}
	return NULL;
}

static char *parse_match(struct ks_policy *p, const cJSON *m)
{
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(m, "operations"), *v, *sel;
	char *err;

	if (!cJSON_IsObject(m))
		return ks_xstrdup("spec.match must be an object");
	err = strings(m, "kinds", p->kinds);
	if (!err && !p->kinds[0])
		err = ks_xstrdup("spec.match.kinds must name at least one kind");
	if (!err)
		err = strings(m, "namespaces", p->names);
	for (size_t i = 0; !err && p->ns && p->kinds[i]; i++) {
		if (strncmp(p->kinds[i], "kupenstack.io/", 14) != 0 && strchr(p->kinds[i], '/'))
			err = ks_xasprintf("spec.match.kinds[%zu]: a namespaced Policy matches "
					   "kupenstack.io kinds only (%s)",
					   i, p->kinds[i]);
	}
	sel = cJSON_GetObjectItemCaseSensitive(m, "namespaceSelector");
	sel = sel ? cJSON_GetObjectItemCaseSensitive(sel, "matchLabels") : NULL;
	if (sel)
		p->selector = cJSON_Duplicate(sel, 1);
	p->ops = ops ? 0 : op_bit("CREATE") | op_bit("UPDATE");
	cJSON_ArrayForEach(v, ops)
	{
		if (!err && (!cJSON_IsString(v) || !op_bit(v->valuestring)))
			err = ks_xstrdup(
				"spec.match.operations: CREATE, UPDATE, DELETE or CONNECT");
		else if (!err)
			p->ops |= op_bit(v->valuestring);
	}
	return err;
}

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
		*err = parse_match(p, cJSON_GetObjectItemCaseSensitive(spec, "match"));
	if (!*err && !src)
		*err = ks_xstrdup("spec.lua: the policy's Lua source is missing");
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

cJSON *ks_policy_rules(const struct ks_policy *p)
{
	cJSON *rules = cJSON_CreateArray(), *rule, *ops;
	char plural[128];

	for (size_t i = 0; p->kinds[i]; i++) {
		const char *slash = strchr(p->kinds[i], '/');
		char *group = slash ? ks_xstrndup(p->kinds[i], (size_t)(slash - p->kinds[i]))
				    : ks_xstrdup("*");

		ks_lua_kube_plural(slash ? slash + 1 : p->kinds[i], plural, sizeof(plural));
		rule = cJSON_AddObjectToObject(rules, "");
		cJSON_DetachItemViaPointer(rules, rule);
		cJSON_AddItemToArray(rules, rule);
		cJSON_AddItemToObject(rule, "apiGroups",
				      cJSON_CreateStringArray((const char *const[]){ group }, 1));
		cJSON_AddItemToObject(rule, "apiVersions",
				      cJSON_CreateStringArray((const char *const[]){ "*" }, 1));
		cJSON_AddItemToObject(rule, "resources",
				      cJSON_CreateStringArray((const char *const[]){ plural }, 1));
		ops = cJSON_AddArrayToObject(rule, "operations");
		for (size_t o = 0; o < KS_ARRAY_SIZE(op_names); o++) {
			if (p->ops & (1u << o))
				cJSON_AddItemToArray(ops, cJSON_CreateString(op_names[o]));
		}
		cJSON_AddStringToObject(rule, "scope", "*");
		free(group);
	}
	return rules;
}

static bool kind_matches(const struct ks_policy *p, const char *group, const char *kind)
{
	for (size_t i = 0; p->kinds[i]; i++) {
		const char *k = p->kinds[i], *slash = strchr(k, '/');

		if (slash && (strlen(group) != (size_t)(slash - k) ||
			      strncmp(k, group, (size_t)(slash - k)) != 0))
			continue;
		if (strcmp(slash ? slash + 1 : k, kind) == 0)
			return true;
	}
	return false;
}

static bool labels_match(const cJSON *want, const cJSON *ns_obj)
{
	const cJSON *labels = ns_obj ? cJSON_GetObjectItemCaseSensitive(
					       cJSON_GetObjectItemCaseSensitive(ns_obj, "metadata"),
					       "labels")
				     : NULL,
		    *w;

	cJSON_ArrayForEach(w, want)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, w->string);

		if (!cJSON_IsString(w) || !cJSON_IsString(v) ||
		    strcmp(v->valuestring, w->valuestring) != 0)
			return false;
	}
	return true;
}

const char *const *ks_policy_kinds(const struct ks_policy *p)
{
	return (const char *const *)p->kinds;
}

bool ks_policy_in_scope(const struct ks_policy *p, const char *ns, const cJSON *ns_obj)
{
	bool named = !p->names[0];

	if (p->ns) /* a Policy: its own namespace, nothing else */
		return strcmp(p->ns, ns) == 0;
	for (size_t i = 0; !named && p->names[i]; i++)
		named = strcmp(p->names[i], ns) == 0;
	return named && (!p->selector || labels_match(p->selector, ns_obj));
}

bool ks_policy_matches(const struct ks_policy *p, const struct ks_policy_req *r)
{
	return (p->ops & op_bit(r->operation)) && kind_matches(p, r->group, r->kind) &&
	       ks_policy_in_scope(p, r->ns, r->namespace_obj);
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
