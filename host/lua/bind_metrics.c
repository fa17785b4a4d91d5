/*
 * bind_metrics.c: ks.core.metrics: plugin counters and histograms, exported on
 * /metrics as kupenstack_plugin_<name>.
 *
 *   local c = metrics.counter("flavors_created_total", "Flavors created.", { "project" })
 *   c:inc({ "demo" }, 1)
 *   local h = metrics.histogram("nova_seconds", "Nova call time.", { "call" }, { 0.1, 1, 10 })
 *   h:observe({ "create" }, 0.42)
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "metrics.h"

#define MAX_LABELS 8
#define MAX_BUCKETS 32

/* The label values in the table at idx as a NULL-terminated list (strings stay on the
 * Lua side: the table holds them). */
static void label_values(lua_State *L, int idx, const char **out)
{
	int i, n = 0;

	if (lua_istable(L, idx))
		n = (int)lua_objlen(L, idx);
	if (n > MAX_LABELS)
		luaL_error(L, "metrics: more than %d label values", MAX_LABELS);
	for (i = 0; i < n; i++) {
		lua_rawgeti(L, idx, i + 1);
		out[i] = lua_tostring(L, -1);
		lua_pop(L, 1);
		if (!out[i])
			luaL_error(L, "metrics: label value %d is not a string", i + 1);
	}
	out[n] = NULL;
}

static struct ks_metric *child(lua_State *L)
{
	struct ks_metric_family *f;
	const char *values[MAX_LABELS + 1];

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "_family");
	f = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (!f)
		return NULL;
	label_values(L, 2, values);
	return ks_metric_child(f, values);
}

static int inc(lua_State *L)
{
	double v = luaL_optnumber(L, 3, 1);
	struct ks_metric *m;

	if (v < 0)
		return luaL_argerror(L, 3, "a counter only goes up");
	m = child(L);
	if (m)
		ks_metric_add(m, v);
	return 0;
}

static int observe(lua_State *L)
{
	double v = luaL_checknumber(L, 3);
	struct ks_metric *m = child(L);

	if (m)
		ks_metric_observe(m, v);
	return 0;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int make(lua_State *L, bool histogram)
{
	struct ks_metrics *m = ks_lua_host(ks_lua_from(L))->metrics;
	const char *name = luaL_checkstring(L, 1), *help = luaL_checkstring(L, 2);
	const char *labels[MAX_LABELS + 1];
	double buckets[MAX_BUCKETS];
	struct ks_metric_family *f = NULL;
	char full[160];
	int nb = 0, i;

	if (!valid_name(name) || strlen(name) > 100)
		return luaL_argerror(L, 1, "metric names are [a-z0-9_]+");
	label_values(L, 3, labels);
	if (histogram) {
		luaL_checktype(L, 4, LUA_TTABLE);
		nb = (int)lua_objlen(L, 4);
		if (nb < 1 || nb > MAX_BUCKETS)
			return luaL_argerror(L, 4, "1 to 32 bucket bounds");
		for (i = 0; i < nb; i++) {
			lua_rawgeti(L, 4, i + 1);
			buckets[i] = luaL_checknumber(L, -1);
			lua_pop(L, 1);
			if (i > 0 && buckets[i] <= buckets[i - 1])
				return luaL_argerror(L, 4, "bucket bounds must increase");
		}
	}
	snprintf(full, sizeof(full), "kupenstack_plugin_%s", name);
	if (m) {
		f = ks_metrics_find(m, full);
		if (!f && histogram)
			f = ks_metrics_histogram(m, full, help, labels, buckets, (size_t)nb);
		else if (!f)
			f = ks_metrics_counter(m, full, help, labels);
	}
	lua_newtable(L);
	lua_pushlightuserdata(L, f);
	lua_setfield(L, -2, "_family");
	lua_pushcfunction(L, histogram ? observe : inc);
	lua_setfield(L, -2, histogram ? "observe" : "inc");
	return 1;
}

static int counter(lua_State *L)
{
	return make(L, false);
}

static int histogram(lua_State *L)
{
	return make(L, true);
}

int ks_lua_open_metrics(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "counter", counter },
		{ "histogram", histogram },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
