/*
 * engine.c: the sandboxed state: allocator with a cap, the allow-listed environment,
 * require, and compiling source text. Tasks (coroutines) live in task.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "ks.h"
#include "log.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "lua/internal.h"

#define DEFAULT_MEMORY (64u << 20)
#define DEFAULT_INSTRUCTIONS 100000000ull
#define DEFAULT_SECONDS 300.0

static const char *const globals_allowed[] = {
	"assert",   "error",	"ipairs",   "next",	"pairs",	"pcall",
	"select",   "tonumber", "tostring", "type",	"unpack",	"xpcall",
	"rawequal", "rawget",	"rawset",   "_VERSION", "setmetatable", "getmetatable",
};
static const char *const libs_allowed[] = { "string", "table", "math", "coroutine" };
static const char *const os_allowed[] = { "time", "clock", "date", "difftime" };

/* The allocator: the cap holds while Lua code runs (e->enforce); the host's own pushes
 * of results between runs are not refused, so the C side never sees a failure it would
 * have to turn into a panic. */
static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct ks_lua *e = ud;

	if (nsize == 0) {
		free(ptr);
		e->used -= osize;
		return NULL;
	}
	if (ptr == NULL)
		osize = 0;
	if (nsize > osize && e->enforce && e->used + (nsize - osize) > e->limits.memory) {
		e->over_memory = true;
		return NULL;
	}
	ptr = realloc(ptr, nsize);
	if (ptr)
		e->used = e->used - osize + nsize;
	return ptr;
}

/* A read-only view of table at idx: reads pass through, writes raise. */
static void push_frozen(lua_State *L, int idx, const char *what)
{
	idx = lua_absindex_compat(L, idx);
	lua_newtable(L);
	lua_newtable(L);
	lua_pushvalue(L, idx);
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, what);
	lua_pushcclosure(L, ks_lua_readonly_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}

int ks_lua_readonly_newindex(lua_State *L)
{
	return luaL_error(L, "%s is read-only (assigning '%s')",
			  lua_tostring(L, lua_upvalueindex(1)), luaL_optstring(L, 2, "?"));
}

static int global_newindex(lua_State *L)
{
	return luaL_error(L, "assignment to global '%s': plugins keep state in locals",
			  luaL_optstring(L, 2, "?"));
}

/* load(text [, name]): text only, compiled in the sandbox. */
static int sandbox_load(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");

	if (luaL_loadbufferx(L, s, len, name, "t") != 0) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, ks_lua_from(L)->env_ref);
	lua_setfenv(L, -2);
	return 1;
}

/* print(...): to stdout for scripts, to the log for plugins. */
static int sandbox_print(lua_State *L)
{
	struct ks_lua *e = ks_lua_from(L);
	int i, n = lua_gettop(L);
	struct ks_buf b;

	ks_buf_init(&b);
	for (i = 1; i <= n; i++) {
		lua_getglobal(L, "tostring");
		lua_pushvalue(L, i);
		lua_call(L, 1, 1);
		ks_buf_printf(&b, "%s%s", i > 1 ? "\t" : "", luaL_optstring(L, -1, ""));
		lua_pop(L, 1);
	}
	if (e->print_stdout) {
		fwrite(b.data ? b.data : "", 1, b.len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	} else {
		ks_info("print", "plugin=%s text=%s", ks_logq(e->name),
			ks_logq(b.data ? b.data : ""));
	}
	ks_buf_deinit(&b);
	return 0;
}

/*
 * pcall, xpcall and coroutine.resume that cannot swallow a stopped task's error: each
 * hands what the real one returned to ks_lua_stop_check (task.c), which raises the stop
 * reason again if a limit stopped the task. They are Lua functions ending in a tail
 * call, so nesting them costs Lua stack, not C stack, as the real ones do. xpcall's
 * handler is not called once the task is stopped: LuaJIT calls the handler again for an
 * error raised inside it, so a looping handler would otherwise run for ever.
 */
static const char guards_source[] =
	"local raw_pcall, raw_xpcall, raw_resume, check, stopped = ...\n"
	"return function(...) return check(raw_pcall(...)) end,\n"
	"  function(f, h, ...)\n"
	"    return check(raw_xpcall(f, function(e)\n"
	"      if stopped() then return e end\n"
	"      return h(e)\n"
	"    end, ...))\n"
	"  end,\n"
	"  function(...) return check(raw_resume(...)) end\n";

enum { T_INSERT, T_REMOVE, T_SORT, T_CONCAT };

/* table.insert, remove, sort and concat loop in C, where the count hook does not fire
 * (table.insert(t, 1, v) moves every element): each is charged first for the elements
 * it may move, compare or copy. Upvalues: the real function, which one it is. */
static int charged_table_fn(lua_State *L)
{
	int what = (int)lua_tointeger(L, lua_upvalueindex(2)), nargs = lua_gettop(L);
	double n = lua_type(L, 1) == LUA_TTABLE ? (double)lua_objlen(L, 1) : 0, cost = 1;

	if ((what == T_INSERT && nargs >= 3) || (what == T_REMOVE && nargs >= 2))
		cost = n - lua_tonumber(L, 2) + 1;
	else if (what == T_SORT)
		cost = n * (log2(n + 1) + 1);
	else if (what == T_CONCAT)
		cost = n;
	ks_lua_charge(L, cost > 1 ? (uint64_t)cost : 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, nargs, LUA_MULTRET);
	return lua_gettop(L);
}

static void charge_table_fns(lua_State *L)
{
	static const char *const names[] = { [T_INSERT] = "insert",
					     [T_REMOVE] = "remove",
					     [T_SORT] = "sort",
					     [T_CONCAT] = "concat" };
	size_t i;

	lua_getglobal(L, "table");
	for (i = 0; i < KS_ARRAY_SIZE(names); i++) {
		lua_getfield(L, -1, names[i]);
		lua_pushinteger(L, (lua_Integer)i);
		lua_pushcclosure(L, charged_table_fn, 2);
		lua_setfield(L, -2, names[i]);
	}
	lua_pop(L, 1);
}

/* Replace the state's pcall, xpcall and coroutine.resume (which make_env hands out)
 * with the guarded ones, string's pattern functions with bounded ones, and table's
 * loops in C with charged ones. */
static void install_guards(lua_State *L)
{
	ks_require(luaL_loadbuffer(L, guards_source, sizeof(guards_source) - 1, "=guards") == 0);
	lua_getglobal(L, "pcall");
	lua_getglobal(L, "xpcall");
	lua_getglobal(L, "coroutine");
	lua_getfield(L, -1, "resume");
	lua_remove(L, -2);
	lua_pushcfunction(L, ks_lua_stop_check);
	lua_pushcfunction(L, ks_lua_stopped);
	lua_call(L, 5, 3);
	lua_getglobal(L, "coroutine");
	lua_insert(L, -2);
	lua_setfield(L, -2, "resume");
	lua_pop(L, 1);
	lua_setglobal(L, "xpcall");
	lua_setglobal(L, "pcall");
	lua_getglobal(L, "string");
	ks_lua_open_patterns(L, lua_gettop(L));
	lua_pop(L, 1);
	charge_table_fns(L);
}

/* Build the environment every chunk of this state runs in; leave its ref in e. */
static void make_env(struct ks_lua *e)
{
	lua_State *L = e->L;
	size_t i;

	lua_newtable(L); /* env */
	for (i = 0; i < KS_ARRAY_SIZE(globals_allowed); i++) {
		lua_getglobal(L, globals_allowed[i]);
		lua_setfield(L, -2, globals_allowed[i]);
	}
	for (i = 0; i < KS_ARRAY_SIZE(libs_allowed); i++) {
		lua_getglobal(L, libs_allowed[i]);
		push_frozen(L, -1, libs_allowed[i]);
		lua_setfield(L, -3, libs_allowed[i]);
		lua_pop(L, 1);
	}
	lua_newtable(L);
	lua_getglobal(L, "os");
	for (i = 0; i < KS_ARRAY_SIZE(os_allowed); i++) {
		lua_getfield(L, -1, os_allowed[i]);
		lua_setfield(L, -3, os_allowed[i]);
	}
	lua_pop(L, 1);
	push_frozen(L, -1, "os");
	lua_setfield(L, -3, "os");
	lua_pop(L, 1);
	lua_pushcfunction(L, sandbox_load);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, sandbox_print);
	lua_setfield(L, -2, "print");
	lua_pushcfunction(L, ks_lua_require);
	lua_setfield(L, -2, "require");
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "_G");
	/* Freeze: no new globals. */
	lua_newtable(L);
	lua_pushcfunction(L, global_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	e->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	/* ("x"):upper() still works; getmetatable("") no longer hands out string. */
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* want (or dflt when 0), lowered to cap when there is one, with a warning when it was
 * asked for. */
static double clamp(const struct ks_lua *e, const char *what, double want, double dflt, double cap)
{
	double v = want > 0 ? want : dflt;

	if (cap > 0 && v > cap) {
		if (want > 0)
			ks_warn("plugin limit lowered to the operator's cap",
				"plugin=%s limit=%s wanted=%.0f cap=%.0f", ks_logq(e->name), what,
				want, cap);
		v = cap;
	}
	return v;
}

void ks_lua_set_limits(struct ks_lua *e, const struct ks_lua_limits *limits)
{
	struct ks_lua_limits want = limits ? *limits : (struct ks_lua_limits){ 0 };
	const struct ks_lua_limits *cap = &e->host.caps;

	e->limits.memory = (size_t)clamp(e, "memory_bytes", (double)want.memory, DEFAULT_MEMORY,
					 (double)cap->memory);
	e->limits.instructions = (uint64_t)clamp(e, "instructions", (double)want.instructions,
						 DEFAULT_INSTRUCTIONS, (double)cap->instructions);
	e->limits.seconds = clamp(e, "seconds", want.seconds, DEFAULT_SECONDS, cap->seconds);
	e->limits.slice = clamp(e, "slice", want.slice, cap->slice, cap->slice); /* 0: none */
}

const struct ks_lua_limits *ks_lua_limits_of(const struct ks_lua *e)
{
	return &e->limits;
}

void ks_lua_set_print_stdout(struct ks_lua *e, bool yes)
{
	e->print_stdout = yes;
}

struct ks_lua *ks_lua_new(const char *name, const struct ks_lua_host *host,
			  const struct ks_lua_limits *limits)
{
	struct ks_lua *e = ks_xcalloc(1, sizeof(*e));

	e->name = ks_xstrdup(name);
	e->host = *host;
	ks_lua_set_limits(e, limits);
	e->L = lua_newstate(alloc, e);
	ks_require(e->L != NULL);
	luaL_openlibs(e->L);
	/* The JIT is off (after openlibs: opening the jit library turns it on): LuaJIT's
	 * count hook does not fire inside compiled loops. */
	luaJIT_setmode(e->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
	lua_newtable(e->L);
	e->loaded_ref = luaL_ref(e->L, LUA_REGISTRYINDEX);
	ks_lua_open_all(e->L); /* fills the preload table */
	install_guards(e->L);
	make_env(e);
	ks_lua_task_init(e);
	return e;
}

void ks_lua_free(struct ks_lua *e)
{
	if (!e)
		return;
	ks_require(e->running == NULL);
	ks_lua_task_cancel_all(e, "the plugin was unloaded");
	lua_close(e->L);
	free(e->name);
	free(e);
}

lua_State *ks_lua_state(struct ks_lua *e)
{
	return e->L;
}

const char *ks_lua_name(const struct ks_lua *e)
{
	return e->name;
}

const struct ks_lua_host *ks_lua_host(const struct ks_lua *e)
{
	return &e->host;
}

struct ks_lua *ks_lua_from(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ud;
}

size_t ks_lua_memory(const struct ks_lua *e)
{
	return e->used;
}

/* Compile onto L's stack (the main state, or the thread calling require). */
static int compile_on(lua_State *L, struct ks_lua *e, const char *name, const char *src, size_t len,
		      char **err)
{
	if (len > 0 && src[0] == LUA_SIGNATURE[0]) {
		*err = ks_xasprintf("%s: precompiled bytecode is refused; load the source", name);
		return -EINVAL;
	}
	if (luaL_loadbufferx(L, src, len, name, "t") != 0) {
		*err = ks_xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		return -EINVAL;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, e->env_ref);
	lua_setfenv(L, -2);
	return 0;
}

int ks_lua_compile(struct ks_lua *e, const char *name, const char *src, size_t len, char **err)
{
	return compile_on(e->L, e, name, src, len, err);
}

/* Read stdlib_dir/<name with dots as slashes>{.lua,/init.lua}; NULL if neither. */
static char *read_module(const char *dir, const char *name, size_t *len, char **path)
{
	char rel[256];
	size_t i;
	int rc;
	char *text;

	if (!dir || strlen(name) >= sizeof(rel) - 16 || strstr(name, ".."))
		return NULL;
	for (i = 0; name[i]; i++) {
		char c = name[i];
		if (!(c == '.' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return NULL;
		rel[i] = c == '.' ? '/' : c;
	}
	rel[i] = '\0';
	*path = ks_xasprintf("%s/%s.lua", dir, rel);
	text = ks_read_file(*path, len, &rc);
	if (!text) {
		free(*path);
		*path = ks_xasprintf("%s/%s/init.lua", dir, rel);
		text = ks_read_file(*path, len, &rc);
	}
	if (!text) {
		free(*path);
		*path = NULL;
	}
	return text;
}

/* require(name): the loaded table, then ks.core.* preloads, then the stdlib (text). */
int ks_lua_require(lua_State *L)
{
	struct ks_lua *e = ks_lua_from(L);
	const char *name = luaL_checkstring(L, 1);
	char *text, *path = NULL, *err = NULL;
	size_t len;

	lua_settop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, e->loaded_ref); /* 2 */
	lua_getfield(L, 2, name);
	if (lua_toboolean(L, -1)) {
		if (lua_islightuserdata(L, -1))
			return luaL_error(L, "require '%s': loop in requires", name);
		return 1;
	}
	lua_pop(L, 1);
	if (ks_lua_push_preload(L, name)) {
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		goto out_store;
	}
	text = read_module(e->host.stdlib_dir, name, &len, &path);
	if (!text)
		return luaL_error(L,
				  "module '%s' not found (host modules are ks.core.*; the "
				  "library is in %s)",
				  name, e->host.stdlib_dir ? e->host.stdlib_dir : "(none)");
	lua_pushlightuserdata(L, e); /* "loading" marker */
	lua_setfield(L, 2, name);
	lua_pushfstring(L, "@%s", path);
	if (compile_on(L, e, lua_tostring(L, -1), text, len, &err) != 0) {
		free(text);
		free(path);
		lua_pushstring(L, err);
		free(err);
		lua_pushnil(L);
		lua_setfield(L, 2, name);
		return lua_error(L);
	}
	free(text);
	free(path);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
out_store:
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, 2, name);
	return 1;
}
