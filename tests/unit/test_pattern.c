/*
 * test_pattern.c: the sandbox's bounded pattern matcher (lua/pattern.c) gives what
 * LuaJIT's own string.find, match, gmatch and gsub give: the same results, and an
 * error where LuaJIT raises one, on random subjects and patterns and on known cases.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "ks.h"
#include "lua/internal.h"
#include "test.h"

/* No task runs here: ks_lua_charge finds no running task and charges nothing. */
static struct ks_lua none;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, nsize);
}

/* native.* are LuaJIT's functions, ours.* the sandbox's; compare(seed, n) runs n
 * random cases and returns the first difference, or nothing. */
static const char fuzz[] =
	"local native, ours = ...\n"
	"local atoms = { 'a', 'b', '.', '%a', '%d', '[ab]', '[^a]', '[a-c]', '%%', '%(',\n"
	"  '(', ')', '()', '%b()', '%f[%a]', '%1', '^', '$', '[%]]', '[]' }\n"
	"local quants = { '', '', '', '*', '+', '-', '?' }\n"
	"local chars = { 'a', 'b', 'c', '(', ')', '%', '1', ' ', ']' }\n"
	"local function pack(...) return { n = select('#', ...), ... } end\n"
	"local function show(r)\n"
	"  local t = {}\n"
	"  for i = 1, r.n do t[i] = tostring(r[i]) end\n"
	"  return table.concat(t, ',')\n"
	"end\n"
	"local function both(fn, ...)\n"
	"  local a = pack(pcall(native[fn], ...))\n"
	"  local b = pack(pcall(ours[fn], ...))\n"
	"  if a[1] ~= b[1] or (a[1] and show(a) ~= show(b)) then\n"
	"    return fn .. '(' .. table.concat({ ... }, ' | ') .. '): native ' .. show(a)\n"
	"      .. ' ours ' .. show(b)\n"
	"  end\n"
	"end\n"
	"local function gm(f)\n"
	"  return function(s, p)\n"
	"    local out = {}\n"
	"    for a, b in f(s, p) do out[#out + 1] = tostring(a) .. '/' .. tostring(b) end\n"
	"    return table.concat(out, ';')\n"
	"  end\n"
	"end\n"
	"native.gm, ours.gm = gm(native.gmatch), gm(ours.gmatch)\n"
	"local seed, n = ...\n"
	"math.randomseed(select(3, ...))\n"
	"for _ = 1, select(4, ...) do\n"
	"  local p, s = {}, {}\n"
	"  for i = 1, math.random(0, 5) do\n"
	"    p[i] = atoms[math.random(#atoms)] .. quants[math.random(#quants)]\n"
	"  end\n"
	"  for i = 1, math.random(0, 8) do s[i] = chars[math.random(#chars)] end\n"
	"  p, s = table.concat(p), table.concat(s)\n"
	"  local init = math.random(-3, 10)\n"
	"  local d = both('find', s, p, init) or both('find', s, p, init, true)\n"
	"    or both('match', s, p, init) or both('gsub', s, p, '<%0>')\n"
	"    or both('gsub', s, p, function(x) return '[' .. tostring(x) .. ']' end, 2)\n"
	"    or both('gm', s, p)\n"
	"  if d then return d end\n"
	"end\n";

TEST(random_patterns_match_as_luajit_matches_them)
{
	lua_State *L = lua_newstate(alloc, &none);
	int rc;

	luaL_openlibs(L);
	ASSERT_EQ(luaL_loadbuffer(L, fuzz, sizeof(fuzz) - 1, "=fuzz"), 0);
	lua_newtable(L); /* native */
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "find");
	lua_setfield(L, -3, "find");
	lua_getfield(L, -1, "match");
	lua_setfield(L, -3, "match");
	lua_getfield(L, -1, "gmatch");
	lua_setfield(L, -3, "gmatch");
	lua_getfield(L, -1, "gsub");
	lua_setfield(L, -3, "gsub");
	lua_pop(L, 1);
	lua_newtable(L); /* ours */
	ks_lua_open_patterns(L, lua_gettop(L));
	lua_pushinteger(L, 20261206);
	lua_pushinteger(L, 200000);
	rc = lua_pcall(L, 4, 1, 0);
	if (rc != 0 || !lua_isnil(L, -1))
		FAIL_("%s", lua_tostring(L, -1));
	lua_close(L);
}

int main(void)
{
	RUN(random_patterns_match_as_luajit_matches_them);
	TEST_MAIN();
}
