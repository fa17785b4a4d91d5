/*
 * run.c: running a plugin's reconcile/finalize for the controller, and its watch maps.
 *
 * Outcomes: a returned table {status=, conditions=, requeue_after=} succeeds; `nil,
 * err` or an error raised fails and is retried (err.backoff, when the library sets one,
 * holds the retry off that long: quota); ctx.terminal(msg, reason) fails for good.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "event.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "lua/bind.h"
#include "lua/fake.h"
#include "plugin/plugin.h"

struct run {
	struct ks_controller *c; /* or NULL */
	char *key;
	ks_plugin_done_cb done;
	void *data;
};

/* ctx.event(type, reason, message); upvalues: the controller (or NULL), the object's
 * JSON. The host's fake, when it has one, takes the event instead. */
static int event(lua_State *L)
{
	struct ks_controller *c = lua_touserdata(L, lua_upvalueindex(1));
	const char *type = luaL_checkstring(L, 1), *reason = luaL_checkstring(L, 2);
	const char *msg = luaL_checkstring(L, 3);
	struct ks_lua_fake *f = ks_lua_host(ks_lua_from(L))->fake;
	struct ks_events *ev = c ? ks_controller_events(c) : NULL;
	cJSON *obj;

	if (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0)
		return luaL_argerror(L, 1, "\"Normal\" or \"Warning\"");
	if (!ev && !(f && f->event)) {
		ks_info("event", "controller=%s type=%s reason=%s message=%s",
			c ? ks_controller_name(c) : ks_lua_name(ks_lua_from(L)), type, reason,
			ks_logq(msg));
		return 0;
	}
	obj = ks_json_parse(lua_tostring(L, lua_upvalueindex(2)),
			    lua_objlen(L, lua_upvalueindex(2)));
	if (f && f->event)
		f->event(f, obj, type, reason, msg);
	else
		ks_event(ev, obj, type, reason, "%s", msg);
	cJSON_Delete(obj);
	return 0;
}

/* What an Event needs of obj (apiVersion, kind, namespace, name, uid, resourceVersion) as
 * JSON text: a few fields, not the whole object, on every reconcile. */
static char *involved(const cJSON *obj)
{
	static const char *const meta[] = { "namespace", "name", "uid", "resourceVersion" };
	const cJSON *m = cJSON_GetObjectItem(obj, "metadata");
	cJSON *o = cJSON_CreateObject(), *om = cJSON_AddObjectToObject(o, "metadata");
	char *text;
	size_t i;

	cJSON_AddStringToObject(o, "apiVersion", ks_json_str(obj, "apiVersion") ?: "");
	cJSON_AddStringToObject(o, "kind", ks_json_str(obj, "kind") ?: "");
	for (i = 0; i < KS_ARRAY_SIZE(meta); i++) {
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(m, meta[i]));
		if (v)
			cJSON_AddStringToObject(om, meta[i], v);
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* The message of an error without its traceback, into a fresh string. */
static char *first_part(const char *msg)
{
	const char *tb = msg ? strstr(msg, "\nstack traceback:") : NULL;

	if (!msg)
		return ks_xstrdup("error");
	return tb ? ks_xstrndup(msg, (size_t)(tb - msg)) : ks_xstrdup(msg);
}

/* t[k] (t at the absolute index idx, a table) without metamethods: a plugin's values are
 * read outside its tasks, where its code must not run unbounded. */
static void rawfield(lua_State *L, int idx, const char *k)
{
	lua_pushstring(L, k);
	lua_rawget(L, idx);
}

/* Fill o from an error value (a table from ctx.terminal or the library, or text). */
static void error_outcome(lua_State *co, int idx, const char *text, struct ks_outcome *o,
			  char **buf, char **reason)
{
	if (lua_istable(co, idx)) {
		rawfield(co, idx, "ks_terminal");
		o->terminal = lua_toboolean(co, -1);
		rawfield(co, idx, "reason");
		if (o->terminal && lua_isstring(co, -1))
			*reason = ks_xstrdup(lua_tostring(co, -1));
		rawfield(co, idx, "backoff");
		o->backoff = lua_isnumber(co, -1) ? lua_tonumber(co, -1) : 0;
		lua_pop(co, 3);
		if (!text) {
			lua_getglobal(co, "tostring");
			lua_pushvalue(co, idx);
			if (ks_lua_pcall_limited(ks_lua_from(co), co, 1, 1) == 0)
				*buf = ks_xstrdup(lua_isstring(co, -1) ? lua_tostring(co, -1)
								       : "error");
			else /* its __tostring failed or was stopped */
				*buf = ks_xstrdup("table: ");
			lua_pop(co, 1);
			/* no __tostring (or a failed one): use its message */
			if (strncmp(*buf, "table: ", 7) == 0) {
				rawfield(co, idx, "message");
				if (lua_isstring(co, -1)) {
					free(*buf);
					*buf = ks_xstrdup(lua_tostring(co, -1));
				}
				lua_pop(co, 1);
			}
		}
		if (o->terminal) {
			rawfield(co, idx, "message");
			free(*buf);
			*buf = ks_xstrdup(luaL_optstring(co, -1, "terminal error"));
			lua_pop(co, 1);
		}
	}
	if (!*buf)
		*buf = first_part(text ? text : lua_tostring(co, idx));
	o->error = *buf;
	o->reason = *reason;
}

static cJSON *field_json(lua_State *co, int idx, const char *field, char **err)
{
	const char *why = NULL;
	cJSON *v = NULL;

	rawfield(co, idx, field);
	if (!lua_isnil(co, -1)) {
		v = ks_lua_to_json(co, -1, &why);
		if (!v)
			*err = ks_xasprintf("the result's '%s' has no JSON form: %s", field, why);
	}
	lua_pop(co, 1);
	return v;
}

/* A result may carry a failure along with the status to keep: {status=, error=,
 * terminal=, reason=, backoff=}. */
static void result_error(lua_State *co, struct ks_outcome *o, char **buf, char **reason)
{
	rawfield(co, 1, "error");
	if (lua_isstring(co, -1)) {
		*buf = ks_xstrdup(lua_tostring(co, -1));
		o->error = *buf;
		rawfield(co, 1, "terminal");
		o->terminal = lua_toboolean(co, -1);
		rawfield(co, 1, "reason");
		if (lua_isstring(co, -1))
			o->reason = *reason = ks_xstrdup(lua_tostring(co, -1));
		rawfield(co, 1, "backoff");
		o->backoff = lua_isnumber(co, -1) ? lua_tonumber(co, -1) : 0;
		lua_pop(co, 3);
	}
	lua_pop(co, 1);
}

static void reconciled(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct run *run = data;
	lua_State *co = ks_lua_task_thread(t);
	struct ks_outcome o = { 0 };
	char *buf = NULL, *reason = NULL;
	cJSON *status = NULL, *conds = NULL;

	if (!ok) {
		ks_debug("reconcile raised", "controller=%s key=%s error=%s",
			 run->c ? ks_controller_name(run->c) : "-", run->key, ks_logq(msg));
		error_outcome(co, lua_gettop(co), msg, &o, &buf, &reason);
	} else if (nres >= 1 && lua_isnil(co, 1)) {
		if (nres >= 2)
			error_outcome(co, 2, NULL, &o, &buf, &reason);
		else
			o.error = buf = ks_xstrdup("reconcile returned nil without an error");
	} else if (nres >= 1 && lua_istable(co, 1)) {
		status = field_json(co, 1, "status", &buf);
		conds = buf ? NULL : field_json(co, 1, "conditions", &buf);
		rawfield(co, 1, "requeue_after");
		o.requeue_after = lua_isnumber(co, -1) ? lua_tonumber(co, -1) : 0;
		lua_pop(co, 1);
		o.status = status;
		o.conditions = conds;
		o.error = buf;
		o.terminal = buf != NULL; /* a malformed result will not mend by retrying */
		if (!buf)
			result_error(co, &o, &buf, &reason);
	} else if (nres >= 1 && !lua_isnil(co, 1) && !lua_istable(co, 1)) {
		o.error = buf = ks_xstrdup("reconcile must return a table, or nil and an error");
		o.terminal = true;
	}
	run->done(&o, run->data);
	cJSON_Delete(status);
	cJSON_Delete(conds);
	free(buf);
	free(reason);
	free(run->key);
	free(run);
}

void ks_plugin_run(struct ks_plugin *p, struct ks_controller *c, const cJSON *obj, const char *key,
		   bool finalize, ks_plugin_done_cb done, void *data)
{
	lua_State *L = ks_lua_state(p->lua);
	struct run *run = ks_xcalloc(1, sizeof(*run));
	char *text;

	run->c = c;
	run->key = ks_xstrdup(key);
	run->done = done;
	run->data = data;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->table_ref);
	lua_getfield(L, -1, finalize ? "finalize" : "reconcile");
	lua_remove(L, -2);
	ks_lua_push_json(L, obj);
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->ctx_ref);
	lua_getfield(L, -1, "new");
	lua_remove(L, -2);
	lua_pushstring(L, key);
	lua_pushnumber(L, (double)ks_now_ns() / 1e9 + p->limits.seconds);
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->config_ref);
	lua_pushlightuserdata(L, c);
	text = involved(obj);
	lua_pushstring(L, text);
	free(text);
	lua_pushcclosure(L, event, 2);
	if (lua_pcall(L, 4, 1, 0) != 0) {
		struct ks_outcome o = { .error = lua_tostring(L, -1) };
		done(&o, data);
		lua_settop(L, 0);
		free(run->key);
		free(run);
		return;
	}
	ks_lua_spawn(p->lua, 2, reconciled, run);
}

static void reconcile_done(const struct ks_outcome *o, void *data)
{
	ks_reconcile_done(data, o);
}

void ks_plugin_reconcile(struct ks_controller *c, struct ks_reconcile *r, void *data)
{
	ks_plugin_run(*(struct ks_plugin **)data, c, ks_reconcile_object(r), ks_reconcile_key(r),
		      ks_reconcile_deleting(r), reconcile_done, r);
}

struct map_run {
	struct ks_controller *c;
};

static void mapped(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct map_run *m = data;
	lua_State *co = ks_lua_task_thread(t);
	int i, n;

	if (!ok) {
		ks_warn("watch map failed", "controller=%s error=%s", ks_controller_name(m->c),
			ks_logq(msg));
	} else if (nres >= 1 && lua_istable(co, 1)) {
		n = (int)lua_objlen(co, 1);
		for (i = 1; i <= n; i++) {
			lua_rawgeti(co, 1, i);
			if (lua_isstring(co, -1))
				ks_controller_enqueue(m->c, lua_tostring(co, -1), KS_QUEUE_HIGH);
			lua_pop(co, 1);
		}
	}
	free(m);
}

void ks_plugin_map(struct ks_controller *c, const struct ks_cache_obj *obj, void *data)
{
	struct ks_plugin_watch *w = data;
	struct ks_plugin *p = *w->slot;
	lua_State *L = ks_lua_state(p->lua);
	struct ks_lua_task *t;
	struct map_run *m;
	cJSON *v;

	if (w->index >= p->nwatches || ks_lua_running(p->lua))
		return;
	m = ks_xcalloc(1, sizeof(*m));
	m->c = c;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->watches[w->index].map_ref);
	v = ks_json_parse(obj->json, obj->len);
	ks_lua_push_json(L, v);
	cJSON_Delete(v);
	t = ks_lua_spawn(p->lua, 1, mapped, m);
	if (t)
		ks_lua_task_cancel(t, "a watch map must not wait for I/O");
}

struct ks_controller *ks_plugin_controller(uv_loop_t *loop, struct ks_kube *kube,
					   struct ks_manager *m, const char *name,
					   struct ks_plugin **slot, struct ks_plugin_watch *watches,
					   const struct ks_controller_opts *o)
{
	const struct ks_plugin *p = *slot;
	struct ks_controller *c;
	size_t i;

	c = ks_controller_new(
		loop, kube, m,
		&(struct ks_controller_opts){
			.name = name,
			.res = p->self.res,
			.api_version = p->api_version,
			.kind = p->self.kind,
			.finalizer = p->finalizer,
			.selector_key = p->selector_key,
			.selector_value = p->selector_value,
			.skip_names = p->skip_names,
			.concurrency = o->concurrency ? o->concurrency : p->concurrency,
			.resync = o->resync > 0 ? o->resync : p->resync,
			.reconcile = ks_plugin_reconcile,
			.data = slot,
			.events = o->events,
			.metrics = o->metrics,
			.qps = o->qps,
			.dry_run = o->dry_run,
		});
	for (i = 0; i < p->nowns; i++)
		ks_controller_own(c, &p->owns[i].res);
	for (i = 0; i < p->nwatches; i++) {
		watches[i] = (struct ks_plugin_watch){ slot, i };
		ks_controller_watch(c, &p->watches[i].res, ks_plugin_map, &watches[i]);
	}
	return c;
}
