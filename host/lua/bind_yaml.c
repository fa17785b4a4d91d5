/*
 * bind_yaml.c: ks.core.yaml: decode (first document) and decode_all, YAML 1.2 through
 * the host's parser.
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/bind.h"
#include "yaml.h"

static int decode_with(lua_State *L, bool all)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	char *err = NULL;
	cJSON *v = all ? ks_yaml_parse_all(s, len, &err) : ks_yaml_parse(s, len, &err);

	if (!v) {
		lua_pushnil(L);
		lua_pushfstring(L, "could not decode YAML: %s", err ? err : "empty");
		free(err);
		return 2;
	}
	ks_lua_push_json(L, v);
	cJSON_Delete(v);
	return 1;
}

static int decode(lua_State *L)
{
	return decode_with(L, false);
}

static int decode_all(lua_State *L)
{
	return decode_with(L, true);
}

int ks_lua_open_yaml(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "decode", decode },
		{ "decode_all", decode_all },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
