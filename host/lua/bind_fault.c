/*
 * bind_fault.c: ks.core.fault: point(kind, name), a crash point (fault.h). Does nothing
 * unless the operator started the host with KUPENSTACK_CRASH_AT naming it; tests use it
 * to kill the host between an OpenStack create and the status write.
 */
#include <lauxlib.h>
#include <lua.h>

#include "fault.h"
#include "lua/bind.h"

static int point(lua_State *L)
{
	const char *kind = luaL_optstring(L, 1, NULL);
	const char *name = luaL_checkstring(L, 2);

	ks_fault_point(kind, name);
	return 0;
}

int ks_lua_open_fault(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "point", point },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
