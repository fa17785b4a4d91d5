/*
 * convert.c: JSON <-> Lua values, the error value convention, and the preload table
 * of the ks.core.* modules.
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"

#define MAX_DEPTH 128
/* What a JSON node costs the host (cJSON's struct and allocator), besides its text. */
#define NODE_BYTES 64

/* The conversion under way: the host memory its tree may take, at most the plugin's
 * memory limit. A table reached through many paths (t = {t, t}, 30 times over) is
 * converted once per path: without this bound, a few bytes of Lua make gigabytes of
 * cJSON on the host's heap. */
static size_t budget;

/* Charge n bytes of tree; false (with *err) once it is spent. */
static bool spend(size_t n, const char **err)
{
	if (n > budget) {
		*err = "the value would take more host memory than the plugin's memory limit "
		       "(is one table reached through many paths?)";
		return false;
	}
	budget -= n;
	return true;
}

static char array_mt_key;
static char null_key;
static char preload_key;
static char error_mt_key;

static const struct {
	const char *name;
	lua_CFunction open;
} modules[] = {
	{ "ks.core.json", ks_lua_open_json },	  { "ks.core.yaml", ks_lua_open_yaml },
	{ "ks.core.log", ks_lua_open_log },	  { "ks.core.time", ks_lua_open_time },
	{ "ks.core.http", ks_lua_open_http },	  { "ks.core.kube", ks_lua_open_kube },
	{ "ks.core.config", ks_lua_open_config }, { "ks.core.metrics", ks_lua_open_metrics },
	{ "ks.core.helm", ks_lua_open_helm },	  { "ks.core.fault", ks_lua_open_fault },
	{ "ks.core.amqp", ks_lua_open_amqp },	  { "ks.core.transfer", ks_lua_open_transfer },
	{ "ks.core.crypto", ks_lua_open_crypto }, { "ks.core.chart", ks_lua_open_chart },
};

static int error_tostring(lua_State *L)
{
	lua_getfield(L, 1, "reason");
	lua_getfield(L, 1, "message");
	if (lua_isstring(L, -2))
		lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), luaL_optstring(L, -1, ""));
	else
		lua_pushstring(L, luaL_optstring(L, -1, "error"));
	return 1;
}

void ks_lua_open_all(lua_State *L)
{
	size_t i;

	lua_pushlightuserdata(L, &preload_key);
	lua_newtable(L);
	for (i = 0; i < KS_ARRAY_SIZE(modules); i++) {
		lua_pushcfunction(L, modules[i].open);
		lua_setfield(L, -2, modules[i].name);
	}
	lua_rawset(L, LUA_REGISTRYINDEX);

	lua_pushlightuserdata(L, &array_mt_key);
	lua_newtable(L);
	lua_pushliteral(L, "array");
	lua_setfield(L, -2, "__jsontype");
	lua_rawset(L, LUA_REGISTRYINDEX);

	lua_pushlightuserdata(L, &error_mt_key);
	lua_newtable(L);
	lua_pushcfunction(L, error_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_rawset(L, LUA_REGISTRYINDEX);
}

void ks_lua_add_preload(lua_State *L, const char *name, lua_CFunction open)
{
	lua_pushlightuserdata(L, &preload_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_pushcfunction(L, open);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

bool ks_lua_push_preload(lua_State *L, const char *name)
{
	lua_pushlightuserdata(L, &preload_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return false;
	}
	return true;
}

void ks_lua_push_array_mt(lua_State *L)
{
	lua_pushlightuserdata(L, &array_mt_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
}

void ks_lua_push_null(lua_State *L)
{
	lua_pushlightuserdata(L, &null_key);
}

bool ks_lua_is_null(lua_State *L, int idx)
{
	return lua_touserdata(L, idx) == &null_key && lua_islightuserdata(L, idx);
}

int ks_lua_fail(lua_State *L, long code, const char *reason, const char *message)
{
	lua_pushnil(L);
	lua_createtable(L, 0, 3);
	lua_pushnumber(L, (lua_Number)code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, reason ? reason : "Error");
	lua_setfield(L, -2, "reason");
	lua_pushstring(L, message ? message : "");
	lua_setfield(L, -2, "message");
	lua_pushlightuserdata(L, &error_mt_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_setmetatable(L, -2);
	return 2;
}

static void push_json(lua_State *L, const cJSON *v, int depth)
{
	const cJSON *c;
	int i = 1;

	luaL_checkstack(L, 4, "JSON too deep");
	if (depth > MAX_DEPTH) {
		lua_pushnil(L);
		return;
	}
	if (cJSON_IsObject(v)) {
		lua_newtable(L);
		cJSON_ArrayForEach(c, v)
		{
			push_json(L, c, depth + 1);
			lua_setfield(L, -2, c->string);
		}
	} else if (cJSON_IsArray(v)) {
		lua_createtable(L, cJSON_GetArraySize(v), 0);
		cJSON_ArrayForEach(c, v)
		{
			push_json(L, c, depth + 1);
			lua_rawseti(L, -2, i++);
		}
		ks_lua_push_array_mt(L);
		lua_setmetatable(L, -2);
	} else if (cJSON_IsString(v)) {
		lua_pushstring(L, v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		lua_pushnumber(L, v->valuedouble);
	} else if (cJSON_IsBool(v)) {
		lua_pushboolean(L, cJSON_IsTrue(v));
	} else {
		ks_lua_push_null(L);
	}
}

void ks_lua_push_json(lua_State *L, const cJSON *v)
{
	push_json(L, v, 0);
}

/* Is the table at idx an array: marked, or keys exactly 1..n with n > 0? */
static bool is_array(lua_State *L, int idx, size_t *n)
{
	size_t count = 0, max = 0;
	bool marked = false;

	if (lua_getmetatable(L, idx)) {
		lua_getfield(L, -1, "__jsontype");
		marked = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "array") == 0;
		lua_pop(L, 2);
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Number k;
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TNUMBER) {
			lua_pop(L, 1);
			return false;
		}
		k = lua_tonumber(L, -1);
		if (k < 1 || floor(k) != k) {
			lua_pop(L, 1);
			return false;
		}
		count++;
		if ((size_t)k > max)
			max = (size_t)k;
	}
	*n = max;
	return count == max && (count > 0 || marked);
}

static cJSON *to_json(lua_State *L, int idx, int depth, const char **err);

static cJSON *table_to_json(lua_State *L, int idx, int depth, const char **err)
{
	cJSON *out, *item;
	size_t n, i;

	if (is_array(L, idx, &n)) {
		out = cJSON_CreateArray();
		for (i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, (int)i);
			item = to_json(L, lua_gettop(L), depth + 1, err);
			lua_pop(L, 1);
			if (!item)
				goto out_fail;
			cJSON_AddItemToArray(out, item);
		}
		return out;
	}
	out = cJSON_CreateObject();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			*err = "a table mixes array and object keys, or has non-string keys";
			goto out_fail;
		}
		item = to_json(L, lua_gettop(L), depth + 1, err);
		if (!item) {
			lua_pop(L, 2);
			goto out_fail;
		}
		cJSON_AddItemToObject(out, lua_tostring(L, -2), item);
		lua_pop(L, 1);
	}
	return out;
out_fail:
	cJSON_Delete(out);
	return NULL;
}

static cJSON *to_json(lua_State *L, int idx, int depth, const char **err)
{
	lua_Number d;

	if (depth > MAX_DEPTH) {
		*err = "nested too deep (a cycle?)";
		return NULL;
	}
	if (!spend(NODE_BYTES + (lua_type(L, idx) == LUA_TSTRING ? lua_objlen(L, idx) : 0), err))
		return NULL;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return cJSON_CreateNull();
	case LUA_TBOOLEAN:
		return cJSON_CreateBool(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		d = lua_tonumber(L, idx);
		if (!isfinite(d)) {
			*err = "NaN and infinity have no JSON form";
			return NULL;
		}
		return cJSON_CreateNumber(d);
	case LUA_TSTRING:
		return cJSON_CreateString(lua_tostring(L, idx));
	case LUA_TTABLE:
		luaL_checkstack(L, 6, "JSON too deep");
		return table_to_json(L, idx, depth, err);
	case LUA_TLIGHTUSERDATA:
		if (ks_lua_is_null(L, idx))
			return cJSON_CreateNull();
		/* fall through */
	default:
		*err = "functions, userdata and threads have no JSON form";
		return NULL;
	}
}

cJSON *ks_lua_to_json(lua_State *L, int idx, const char **err)
{
	if (idx < 0 && idx > LUA_REGISTRYINDEX)
		idx = lua_gettop(L) + idx + 1;
	budget = ks_lua_limits_of(ks_lua_from(L))->memory;
	return to_json(L, idx, 0, err);
}
