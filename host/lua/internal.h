#pragma once
/*
 * internal.h: the engine's state, shared by engine.c and task.c only; bindings use
 * engine.h and bind.h.
 */
#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "lua/engine.h"

struct ks_lua {
	char *name;
	lua_State *L;
	struct ks_lua_host host;
	struct ks_lua_limits limits;
	size_t used;		     /* bytes allocated by the state */
	bool enforce;		     /* the memory cap holds (Lua code is running) */
	bool over_memory;	     /* the allocator refused since the task started */
	bool print_stdout;	     /* print() writes to stdout (scripts) rather than the log */
	int env_ref;		     /* registry ref of the sandbox environment */
	int loaded_ref;		     /* registry ref of the modules required so far */
	struct ks_lua_task *running; /* the task inside lua_resume now */
	struct ks_lua_task *tasks;   /* every task not finished */
	size_t ntasks;
};

/* The absolute index of idx (LuaJIT 2.1 has no lua_absindex). */
static inline int lua_absindex_compat(lua_State *L, int idx)
{
	return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}

int ks_lua_readonly_newindex(lua_State *L);
int ks_lua_require(lua_State *L);
void ks_lua_task_init(struct ks_lua *e);
/* The sandbox's pcall, xpcall and coroutine.resume end in this: it returns its arguments,
 * or raises the running task's stop reason again if a limit stopped it (task.c). */
int ks_lua_stop_check(lua_State *L);
/* Push whether a limit stopped the running task (a lua_CFunction). */
int ks_lua_stopped(lua_State *L);
/* Set string.find, match, gmatch and gsub in the string table at idx to those of
 * strlib.c, on the bounded matcher of pattern.c. */
void ks_lua_open_patterns(lua_State *L, int idx);
void ks_lua_task_cancel_all(struct ks_lua *e, const char *why);
