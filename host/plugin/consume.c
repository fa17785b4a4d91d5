/*
 * consume.c: a plugin's 'consumes' (consume.h): the field read from its table, and the
 * running consumers of a binding, one host/amqp.c consumer each, whose messages go
 * through the plugin's map to its controller's queue.
 */
#include "plugin/consume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "amqp.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "lua/bind.h"
#include "plugin/plugin.h"

/* --- the field ------------------------------------------------------------------------ */

static bool get_string(lua_State *L, int t, int i, const char *field, char **out, char **err)
{
	size_t len;
	const char *s;

	lua_getfield(L, t, field);
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
	if (!s || len == 0 || len > 255) {
		*err = ks_xasprintf("field 'consumes[%d].%s' must be a string of 1 to 255 bytes", i,
				    field);
		lua_pop(L, 1);
		return false;
	}
	*out = ks_xstrdup(s);
	lua_pop(L, 1);
	return true;
}

static bool get_one(lua_State *L, int t, int i, struct ks_plugin_consume *c, char **err)
{
	if (!get_string(L, t, i, "exchange", &c->exchange, err) ||
	    !get_string(L, t, i, "topic", &c->topic, err))
		return false;
	lua_getfield(L, t, "map");
	if (!lua_isfunction(L, -1)) {
		*err = ks_xasprintf(
			"field 'consumes[%d].map' must be a function(msg) returning keys", i);
		lua_pop(L, 1);
		return false;
	}
	c->map_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return true;
}

bool ks_plugin_get_consumes(lua_State *L, int t, struct ks_plugin *p, char **err)
{
	bool ok = true;
	int i, len;

	lua_getfield(L, t, "consumes");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return true;
	}
	if (!lua_istable(L, -1)) {
		*err = ks_xstrdup(
			"field 'consumes' must be a list of { exchange =, topic =, map = }");
		lua_pop(L, 1);
		return false;
	}
	len = (int)lua_objlen(L, -1);
	if (len > KS_PLUGIN_MAX_CONSUMES) {
		*err = ks_xasprintf("field 'consumes' lists %d subscriptions; at most %d", len,
				    KS_PLUGIN_MAX_CONSUMES);
		lua_pop(L, 1);
		return false;
	}
	for (i = 1; ok && i <= len; i++) {
		struct ks_plugin_consume *c = &p->consumes[i - 1];

		c->map_ref = LUA_NOREF;
		p->nconsumes++;
		lua_rawgeti(L, -1, i);
		if (!lua_istable(L, -1)) {
			*err = ks_xasprintf("field 'consumes[%d]' must be a table", i);
			ok = false;
		} else {
			ok = get_one(L, lua_gettop(L), i, c, err);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return ok;
}

void ks_plugin_consumes_free(struct ks_plugin *p, lua_State *L)
{
	for (size_t i = 0; i < p->nconsumes; i++) {
		free(p->consumes[i].exchange);
		free(p->consumes[i].topic);
		if (L && p->consumes[i].map_ref != LUA_NOREF)
			luaL_unref(L, LUA_REGISTRYINDEX, p->consumes[i].map_ref);
	}
	p->nconsumes = 0;
}

static bool same_str(const char *a, const char *b)
{
	return !a == !b && (!a || strcmp(a, b) == 0);
}

bool ks_plugin_same_consumes(const struct ks_plugin *a, const struct ks_plugin *b)
{
	if (a->nconsumes != b->nconsumes)
		return false;
	for (size_t i = 0; i < a->nconsumes; i++)
		if (!same_str(a->consumes[i].exchange, b->consumes[i].exchange) ||
		    !same_str(a->consumes[i].topic, b->consumes[i].topic))
			return false;
	return true;
}

/* --- running ---------------------------------------------------------------------------- */

struct consumer {
	struct ks_consumers *cs;
	size_t index;
	struct ks_amqp *amqp;
	struct ks_metric *connected, *messages, *dropped, *failures, *keys;
	struct ks_amqp_stats last; /* what the counters were given so far */
};

struct ks_consumers {
	struct ks_plugin **slot;
	struct ks_controller *c;
	struct ks_metrics *m;
	size_t n;
	struct consumer v[KS_PLUGIN_MAX_CONSUMES];
};

struct map_run {
	struct consumer *k;
	struct ks_controller *c;
	struct ks_metric *keys;
};

static void mapped(struct ks_lua_task *t, bool ok, int nres, const char *msg, void *data)
{
	struct map_run *m = data;
	lua_State *co = ks_lua_task_thread(t);
	int i, n;

	if (!ok) {
		ks_warn("consumes map failed", "controller=%s error=%s", ks_controller_name(m->c),
			ks_logq(msg));
	} else if (nres >= 1 && lua_istable(co, 1)) {
		n = (int)lua_objlen(co, 1);
		for (i = 1; i <= n; i++) {
			lua_rawgeti(co, 1, i);
			if (lua_type(co, -1) == LUA_TSTRING) {
				ks_controller_enqueue(m->c, lua_tostring(co, -1), KS_QUEUE_HIGH);
				ks_metric_inc(m->keys);
			}
			lua_pop(co, 1);
		}
	}
	free(m);
}

static void message(const char *body, size_t len, const char *key, void *data)
{
	struct consumer *k = data;
	struct ks_plugin *p = *k->cs->slot;
	struct ks_lua_task *t;
	struct map_run *m;
	lua_State *L;
	cJSON *v;

	(void)key;
	if (k->index >= p->nconsumes || ks_lua_running(p->lua))
		return;
	L = ks_lua_state(p->lua);
	m = ks_xcalloc(1, sizeof(*m));
	m->k = k;
	m->c = k->cs->c;
	m->keys = k->keys;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->consumes[k->index].map_ref);
	v = ks_json_parse(body, len);
	if (v)
		ks_lua_push_json(L, v);
	else
		lua_pushlstring(L, body, len);
	cJSON_Delete(v);
	t = ks_lua_spawn(p->lua, 1, mapped, m);
	if (t)
		ks_lua_task_cancel(t, "a consumes map must not wait for I/O");
}

/* Before each render of /metrics: the consumers' stats into their series. */
static void collect(struct ks_metrics *mx, void *data)
{
	struct ks_consumers *cs = data;

	(void)mx;
	for (size_t i = 0; i < cs->n; i++) {
		struct consumer *k = &cs->v[i];
		struct ks_amqp_stats s;

		ks_amqp_stats(k->amqp, &s);
		ks_metric_set(k->connected, s.connected ? 1 : 0);
		ks_metric_add(k->messages, (double)(s.messages - k->last.messages));
		ks_metric_add(k->dropped, (double)(s.dropped - k->last.dropped));
		ks_metric_add(k->failures, (double)(s.failures - k->last.failures));
		k->last = s;
	}
}

static void series(struct ks_consumers *cs, struct consumer *k, const char *plugin,
		   const struct ks_plugin_consume *pc)
{
	static const char *const labels[] = { "plugin", "exchange", "topic", NULL };
	const char *values[] = { plugin, pc->exchange, pc->topic, NULL };
	struct ks_metrics *m = cs->m;

	k->connected = ks_metric_child(
		ks_metrics_gauge(m, "kupenstack_amqp_connected",
				 "1 while the consumer of a plugin's consumes is connected",
				 labels),
		values);
	k->messages = ks_metric_child(ks_metrics_counter(m, "kupenstack_amqp_messages_total",
							 "messages received", labels),
				      values);
	k->dropped = ks_metric_child(
		ks_metrics_counter(m, "kupenstack_amqp_dropped_total",
				   "messages dropped (too large, or too many waiting)", labels),
		values);
	k->failures = ks_metric_child(ks_metrics_counter(m, "kupenstack_amqp_failures_total",
							 "connections that failed", labels),
				      values);
	k->keys = ks_metric_child(ks_metrics_counter(m, "kupenstack_amqp_enqueued_total",
						     "keys the plugin's map enqueued", labels),
				  values);
}

struct ks_consumers *ks_consumers_start(uv_loop_t *loop, const char *url, struct ks_plugin **slot,
					struct ks_controller *c, struct ks_metrics *m)
{
	struct ks_plugin *p = *slot;
	struct ks_consumers *cs;

	if (p->nconsumes == 0)
		return NULL;
	if (!url) {
		ks_info("plugin consumes a message bus, and no --amqp-url-file is set: polling "
			"only",
			"plugin=%s", ks_logq(p->name));
		return NULL;
	}
	cs = ks_xcalloc(1, sizeof(*cs));
	cs->slot = slot;
	cs->c = c;
	cs->m = m;
	for (size_t i = 0; i < p->nconsumes; i++) {
		const struct ks_plugin_consume *pc = &p->consumes[i];
		const char *keys[] = { pc->topic, NULL };
		struct consumer *k = &cs->v[cs->n];
		const char *err = NULL;

		k->cs = cs;
		k->index = i;
		k->amqp =
			ks_amqp_start(loop,
				      &(struct ks_amqp_opts){
					      .url = url, .exchange = pc->exchange, .keys = keys },
				      message, k, &err);
		if (!k->amqp) {
			ks_warn("cannot consume", "plugin=%s exchange=%s error=%s",
				ks_logq(p->name), pc->exchange, err);
			continue;
		}
		series(cs, k, p->name, pc);
		cs->n++;
	}
	if (m)
		ks_metrics_add_collector(m, collect, cs);
	return cs;
}

void ks_consumers_stop(struct ks_consumers *cs)
{
	if (!cs)
		return;
	if (cs->m)
		ks_metrics_remove_collector(cs->m, collect, cs);
	for (size_t i = 0; i < cs->n; i++) {
		ks_metric_set(cs->v[i].connected, 0);
		ks_amqp_stop(cs->v[i].amqp);
	}
	free(cs);
}

bool ks_consumers_ready(const struct ks_consumers *cs, char *why, size_t cap)
{
	for (size_t i = 0; cs && i < cs->n; i++) {
		struct ks_amqp_stats s;

		ks_amqp_stats(cs->v[i].amqp, &s);
		if (!s.connected && s.failures > 0) {
			snprintf(why, cap, "the message bus consumer of controller %s is down: %s",
				 ks_controller_name(cs->c), s.last_error);
			return false;
		}
	}
	return true;
}
