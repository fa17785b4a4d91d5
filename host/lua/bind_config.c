/*
 * bind_config.c: ks.core.config: the operator's settings a plugin may read.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/bind.h"
#include "lua/engine.h"

static int get(lua_State *L)
{
	const struct ks_lua_host *h = ks_lua_host(ks_lua_from(L));
	const char *name = luaL_checkstring(L, 1), *v = NULL;

	if (strcmp(name, "clouds_yaml") == 0)
		v = h->clouds_yaml;
	else if (strcmp(name, "cloud") == 0)
		v = h->cloud;
	else if (strcmp(name, "cluster") == 0)
		v = h->cluster;
	else if (strcmp(name, "project_namespaces") == 0)
		v = h->project_namespaces;
	else
		return luaL_error(L,
				  "config.get: no setting '%s' (clouds_yaml, cloud, cluster, "
				  "project_namespaces)",
				  name);
	if (v)
		lua_pushstring(L, v);
	else
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
