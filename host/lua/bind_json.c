/*
 * bind_json.c: ks.core.json: encode, decode, null, array.
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/bind.h"

static int encode(lua_State *L)
{
	const char *err = NULL;
	cJSON *v;
	char *text;

	luaL_checkany(L, 1);
	v = ks_lua_to_json(L, 1, &err);
	if (!v)
		return luaL_error(L, "json.encode: %s", err);
	text = cJSON_PrintUnformatted(v);
	cJSON_Delete(v);
	lua_pushstring(L, text);
	free(text);
	return 1;
}

static int decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len), *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, 0);

	if (!v) {
		lua_pushnil(L);
		lua_pushfstring(L, "could not decode JSON at byte %d",
				(int)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - s : 0));
		return 2;
	}
	ks_lua_push_json(L, v);
	cJSON_Delete(v);
	return 1;
}

/* array(t): mark t (default a new table) as a JSON array; returns it. */
static int array(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	ks_lua_push_array_mt(L);
	lua_setmetatable(L, 1);
	return 1;
}

static int is_array(lua_State *L)
{
	int yes = 0;

	if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
		ks_lua_push_array_mt(L);
		yes = lua_rawequal(L, -1, -2);
	}
	lua_pushboolean(L, yes);
	return 1;
}

int ks_lua_open_json(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "encode", encode },	  { "decode", decode }, { "array", array },
		{ "is_array", is_array }, { NULL, NULL },
	};

	luaL_newlib(L, fns);
	ks_lua_push_null(L);
	lua_setfield(L, -2, "null");
	return 1;
}
