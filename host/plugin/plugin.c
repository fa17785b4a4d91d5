/*
 * plugin.c: loading and checking a plugin table, and running its reconcile/finalize.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "event.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "lua/bind.h"
#include "plugin/plugin.h"
#include "plugin/schema.h"

/* ctx.terminal raises this table; the host recognises it by its marker field. */
static const char ctx_source[] =
	"local log = require 'ks.core.log'\n"
	"local ctx_of = {}\n"
	"local function keyed(f, key)\n"
	"  return function(msg, fields)\n"
	"    local t = { key = key }\n"
	"    if type(fields) == 'table' then for k, v in pairs(fields) do t[k] = v end end\n"
	"    return f(msg, t)\n"
	"  end\n"
	"end\n"
	"function ctx_of.new(key, deadline, config, event)\n"
	"  return {\n"
	"    key = key, deadline = deadline, config = config, event = event,\n"
	"    log = { debug = keyed(log.debug, key), info = keyed(log.info, key),\n"
	"            warn = keyed(log.warn, key), error = keyed(log.error, key) },\n"
	"    terminal = function(msg, reason)\n"
	"      error({ ks_terminal = true, message = tostring(msg), reason = reason or 'Terminal' "
	"}, 2)\n"
	"    end,\n"
	"  }\n"
	"end\n"
	"return ctx_of\n";

static void kind_free(struct ks_plugin_kind *k, lua_State *L)
{
	free(k->group);
	free(k->version);
	free(k->kind);
	free(k->resource);
	if (L && k->map_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, k->map_ref);
}

void ks_plugin_free(struct ks_plugin *p, const char *why)
{
	lua_State *L;
	size_t i;

	if (!p)
		return;
	ks_lua_cancel_all(p->lua, why);
	if (p->ctx_ref)
		luaL_unref(ks_lua_state(p->lua), LUA_REGISTRYINDEX, p->ctx_ref);
	L = ks_lua_state(p->lua);
	kind_free(&p->self, L);
	for (i = 0; i < p->nowns; i++)
		kind_free(&p->owns[i], L);
	for (i = 0; i < p->nwatches; i++)
		kind_free(&p->watches[i], L);
	ks_plugin_consumes_free(p, L);
	ks_lua_free(p->lua);
	free(p->name);
	free(p->api_version);
	free(p->finalizer);
	free(p->selector_key);
	free(p->selector_value);
	free(p->skip_names);
	free(p);
}

/* Field checks: each sets *err naming the field and returns false. */
static bool get_str(lua_State *L, int t, const char *field, bool required, char **out,
		    const char *where, char **err)
{
	lua_getfield(L, t, field);
	if (lua_isnil(L, -1) && !required) {
		lua_pop(L, 1);
		return true;
	}
	if (lua_type(L, -1) != LUA_TSTRING) {
		*err = ks_xasprintf("field '%s%s' must be a string", where, field);
		lua_pop(L, 1);
		return false;
	}
	*out = ks_xstrdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return true;
}

static bool get_num(lua_State *L, int t, const char *field, double min, double max, double *out,
		    char **err)
{
	lua_getfield(L, t, field);
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < min ||
		    lua_tonumber(L, -1) > max) {
			*err = ks_xasprintf("field '%s' must be a number in [%g, %g]", field, min,
					    max);
			lua_pop(L, 1);
			return false;
		}
		*out = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return true;
}

/* The optional field scope at t: "Namespaced" or "Cluster" (a cluster-scoped kind, as its
 * CRD says); *namespaced is left alone when it is absent. */
static bool get_scope(lua_State *L, int t, const char *where, bool *namespaced, char **err)
{
	const char *s;
	bool ok = true;

	lua_getfield(L, t, "scope");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	if (s && strcmp(s, "Namespaced") == 0) {
		*namespaced = true;
	} else if (s && strcmp(s, "Cluster") == 0) {
		*namespaced = false;
	} else if (!lua_isnil(L, -1)) {
		*err = ks_xasprintf("field '%sscope' must be \"Namespaced\" or \"Cluster\"", where);
		ok = false;
	}
	lua_pop(L, 1);
	return ok;
}

/* The kind description at t (group, version, kind, optional resource, scope and map). */
static bool get_kind(lua_State *L, int t, const char *where, bool want_map,
		     struct ks_plugin_kind *k, char **err)
{
	char plural[128];

	k->map_ref = LUA_NOREF;
	if (!get_str(L, t, "group", true, &k->group, where, err) ||
	    !get_str(L, t, "version", true, &k->version, where, err) ||
	    !get_str(L, t, "kind", true, &k->kind, where, err) ||
	    !get_str(L, t, "resource", false, &k->resource, where, err))
		return false;
	if (!k->resource) {
		ks_lua_kube_plural(k->kind, plural, sizeof(plural));
		k->resource = ks_xstrdup(plural);
	}
	k->res = (struct ks_kube_res){ k->group, k->version, k->resource, true };
	if (strcmp(k->kind, "Namespace") == 0 || strcmp(k->kind, "Node") == 0)
		k->res.namespaced = false;
	if (!get_scope(L, t, where, &k->res.namespaced, err))
		return false;
	if (want_map) {
		lua_getfield(L, t, "map");
		if (!lua_isfunction(L, -1)) {
			*err = ks_xasprintf("field '%smap' must be a function(obj) returning keys",
					    where);
			lua_pop(L, 1);
			return false;
		}
		k->map_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	return true;
}

static bool get_kinds(lua_State *L, int t, const char *field, bool want_map,
		      struct ks_plugin_kind *out, size_t *n, char **err)
{
	char where[64];
	int i, len;

	lua_getfield(L, t, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (!lua_istable(L, -1)) {
		*err = ks_xasprintf("field '%s' must be a list of kinds", field);
		lua_pop(L, 1);
		return false;
	}
	len = (int)lua_objlen(L, -1);
	if (len > KS_PLUGIN_MAX_KINDS) {
		*err = ks_xasprintf("field '%s' lists more than %d kinds", field,
				    KS_PLUGIN_MAX_KINDS);
		lua_pop(L, 1);
		return false;
	}
	for (i = 1; i <= len; i++) {
		snprintf(where, sizeof(where), "%s[%d].", field, i);
		lua_rawgeti(L, -1, i);
		if (!lua_istable(L, -1)) {
			*err = ks_xasprintf("field '%s[%d]' must be a table", field, i);
			lua_pop(L, 2);
			return false;
		}
		(*n)++;
		if (!get_kind(L, lua_gettop(L), where, want_map, &out[i - 1], err)) {
			lua_pop(L, 2);
			return false;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return true;
}

/* Field skip_names: a list of object names ("p*": a prefix), kept joined with ",". */
static bool get_skip_names(lua_State *L, int t, char **out, char **err)
{
	struct ks_buf b;
	size_t i, n;

	lua_getfield(L, t, "skip_names");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	n = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
	ks_buf_init(&b);
	for (i = 1; i <= n; i++) {
		const char *s;

		lua_rawgeti(L, -1, (int)i);
		s = lua_tostring(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING || !*s || strchr(s, ',')) {
			ks_buf_deinit(&b);
			lua_settop(L, t);
			*err = ks_xasprintf("field 'skip_names' entry %zu must be a name or a "
					    "prefix ending in '*' (no commas)",
					    i);
			return false;
		}
		ks_buf_printf(&b, "%s%s", i > 1 ? "," : "", s);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (!n) {
		ks_buf_deinit(&b);
		*err = ks_xstrdup("field 'skip_names' must be a non-empty list of names");
		return false;
	}
	*out = ks_buf_steal(&b);
	return true;
}

static bool check_fn(lua_State *L, int t, const char *field, bool required, char **err)
{
	bool ok;

	lua_getfield(L, t, field);
	ok = lua_isfunction(L, -1) || (!required && lua_isnil(L, -1));
	lua_pop(L, 1);
	if (!ok)
		*err = ks_xasprintf("field '%s' must be a function(obj, ctx)", field);
	return ok;
}

/* Check the plugin table at the top of the stack and fill p from it. */
static bool check_table(struct ks_plugin *p, lua_State *L, char **err)
{
	int t = lua_gettop(L);
	double api = 0, conc = 1, mem = 64, instr = 100e6, secs = 300;

	if (!lua_istable(L, t)) {
		*err = ks_xstrdup("the file must return the plugin table");
		return false;
	}
	if (!get_num(L, t, "api", 1, 1e9, &api, err))
		return false;
	if (api != KS_PLUGIN_API) {
		*err = ks_xasprintf("field 'api' must be %d (the contract this host speaks)",
				    KS_PLUGIN_API);
		return false;
	}
	if (!get_kind(L, t, "", false, &p->self, err) ||
	    !get_str(L, t, "finalizer", false, &p->finalizer, "", err) ||
	    !get_num(L, t, "concurrency", 1, 64, &conc, err) ||
	    !get_num(L, t, "resync", 0, 86400 * 7, &p->resync, err) ||
	    !get_kinds(L, t, "owns", false, p->owns, &p->nowns, err) ||
	    !get_kinds(L, t, "watches", true, p->watches, &p->nwatches, err) ||
	    !ks_plugin_get_consumes(L, t, p, err) || !check_fn(L, t, "reconcile", true, err) ||
	    !check_fn(L, t, "finalize", p->finalizer != NULL, err))
		return false;
	lua_getfield(L, t, "selector");
	if (!lua_isnil(L, -1)) {
		lua_pushnil(L);
		if (!lua_istable(L, -2) || !lua_next(L, -2) || lua_type(L, -2) != LUA_TSTRING ||
		    lua_type(L, -1) != LUA_TSTRING) {
			*err = ks_xstrdup("field 'selector' must be a table of one label = value");
			lua_settop(L, t);
			return false;
		}
		p->selector_key = ks_xstrdup(lua_tostring(L, -2));
		p->selector_value = ks_xstrdup(lua_tostring(L, -1));
		lua_settop(L, t);
	} else {
		lua_pop(L, 1);
	}
	if (!get_skip_names(L, t, &p->skip_names, err))
		return false;
	lua_getfield(L, t, "limits");
	if (!lua_isnil(L, -1)) {
		if (!lua_istable(L, -1) ||
		    !get_num(L, lua_gettop(L), "memory_mb", 1, 4096, &mem, err) ||
		    !get_num(L, lua_gettop(L), "instructions", 1e4, 1e12, &instr, err) ||
		    !get_num(L, lua_gettop(L), "seconds", 0.01, 86400, &secs, err)) {
			if (!*err)
				*err = ks_xstrdup("field 'limits' must be a table");
			lua_pop(L, 1);
			return false;
		}
	}
	lua_pop(L, 1);
	p->concurrency = (unsigned)conc;
	p->limits = (struct ks_lua_limits){ .memory = (size_t)mem << 20,
					    .instructions = (uint64_t)instr,
					    .seconds = secs };
	p->api_version = ks_xasprintf("%s/%s", p->self.group, p->self.version);
	lua_getfield(L, t, "config_schema");
	if (!ks_lua_schema_check(L, -1, err) || ks_lua_schema_apply(L, -1, NULL, false, err) != 0) {
		lua_settop(L, t);
		return false;
	}
	p->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	p->schema_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, t);
	p->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return true;
}

struct load_result {
	bool done, ok;
	char *err;
};

static void loaded(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct load_result *lr = data;

	lr->done = true;
	lr->ok = ok;
	if (!ok) {
		lr->err = ks_xstrdup(msg);
		return;
	}
	lua_settop(ks_lua_task_thread(t), nres ? 1 : 0);
	if (nres == 0)
		lua_pushnil(ks_lua_task_thread(t));
	lua_xmove(ks_lua_task_thread(t), ks_lua_state(ks_lua_from(ks_lua_task_thread(t))), 1);
}

struct ks_plugin *ks_plugin_load(const struct ks_lua_host *host, const char *name, const char *src,
				 size_t len, char **err)
{
	struct ks_plugin *p = ks_xcalloc(1, sizeof(*p));
	struct load_result lr = { 0 };
	struct ks_lua_task *t;
	char *why = NULL, *chunk;
	lua_State *L;

	p->name = ks_xstrdup(name);
	p->self.map_ref = LUA_NOREF;
	p->lua = ks_lua_new(name, host, NULL);
	L = ks_lua_state(p->lua);
	if (ks_lua_compile(p->lua, "=ctx", ctx_source, sizeof(ctx_source) - 1, &why) != 0)
		goto out_fail;
	if (lua_pcall(L, 0, 1, 0) != 0) {
		why = ks_xstrdup(lua_tostring(L, -1));
		goto out_fail;
	}
	p->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	chunk = ks_xasprintf("@%s", name);
	if (ks_lua_compile(p->lua, chunk, src, len, &why) != 0) {
		free(chunk);
		goto out_fail;
	}
	free(chunk);
	t = ks_lua_spawn(p->lua, 0, loaded, &lr);
	if (t) {
		ks_lua_task_cancel(t, "plugins must not wait for I/O while loading");
		why = lr.err;
		goto out_fail;
	}
	if (!lr.ok) {
		why = lr.err;
		goto out_fail;
	}
	if (!check_table(p, L, &why))
		goto out_fail;
	ks_lua_set_limits(p->lua, &p->limits);
	lua_settop(L, 0);
	lua_gc(L, LUA_GCCOLLECT, 0); /* the compiler's garbage: a loaded state is lean */
	lua_settop(L, 0);
	return p;
out_fail:
	*err = ks_xasprintf("plugin %s: %s", name, why ? why : "could not load");
	free(why);
	lua_settop(L, 0);
	ks_plugin_free(p, "load failed");
	return NULL;
}

int ks_plugin_configure(struct ks_plugin *p, const cJSON *settings, char **err)
{
	lua_State *L = ks_lua_state(p->lua);
	int rc;

	lua_rawgeti(L, LUA_REGISTRYINDEX, p->schema_ref);
	rc = ks_lua_schema_apply(L, -1, settings, true, err);
	if (rc == 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, p->config_ref);
		p->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_pop(L, 1);
	return rc;
}

static bool same_kind(const struct ks_plugin_kind *a, const struct ks_plugin_kind *b)
{
	return strcmp(a->group, b->group) == 0 && strcmp(a->version, b->version) == 0 &&
	       strcmp(a->kind, b->kind) == 0 && strcmp(a->resource, b->resource) == 0;
}

bool ks_plugin_same_shape(const struct ks_plugin *a, const struct ks_plugin *b)
{
	size_t i;

	if (!same_kind(&a->self, &b->self) || a->nowns != b->nowns || a->nwatches != b->nwatches ||
	    a->concurrency != b->concurrency || a->resync != b->resync ||
	    !a->finalizer != !b->finalizer ||
	    (a->finalizer && strcmp(a->finalizer, b->finalizer) != 0) ||
	    !a->skip_names != !b->skip_names ||
	    (a->skip_names && strcmp(a->skip_names, b->skip_names) != 0) ||
	    !a->selector_key != !b->selector_key ||
	    (a->selector_key && (strcmp(a->selector_key, b->selector_key) != 0 ||
				 strcmp(a->selector_value, b->selector_value) != 0)))
		return false;
	for (i = 0; i < a->nowns; i++)
		if (!same_kind(&a->owns[i], &b->owns[i]))
			return false;
	for (i = 0; i < a->nwatches; i++)
		if (!same_kind(&a->watches[i], &b->watches[i]))
			return false;
	return ks_plugin_same_consumes(a, b);
}
