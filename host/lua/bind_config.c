/*
 * bind_config.c: ks.core.config: the operator's settings a plugin may read (the host
 * gives them no meaning: see struct ks_setting).
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/bind.h"
#include "lua/engine.h"

/* get(name): the text of the operator's setting name, or nil when it has none. */
static int get(lua_State *L)
{
	const struct ks_lua_host *h = ks_lua_host(ks_lua_from(L));
	const char *name = luaL_checkstring(L, 1);
	size_t i;

	for (i = 0; i < h->nsettings; i++) {
		if (strcmp(h->settings[i].name, name) == 0) {
			lua_pushstring(L, h->settings[i].value);
			return 1;
		}
	}
	lua_pushnil(L);
	return 1;
}

int ks_lua_open_config(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "get", get },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
