/*
 * strlib.c: string.find, match, gmatch and gsub of the sandbox, on the matcher of
 * pattern.c (why the sandbox has its own: see there). A plain find (memmem) is linear and
 * not charged.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/engine.h"
#include "lua/internal.h"
#include "lua/pattern.h"

/* The 0-based start from a 1-based, possibly negative, init, in [0, len] (as 5.1). */
static ptrdiff_t start_of(lua_Integer init, size_t len)
{
	if (init < 0)
		init += (lua_Integer)len + 1;
	if (init < 1)
		init = 1;
	return init > (lua_Integer)len + 1 ? (ptrdiff_t)len : (ptrdiff_t)init - 1;
}

static bool has_specials(const char *p, size_t lp)
{
	size_t i;

	for (i = 0; i < lp; i++)
		if (p[i] && strchr(KS_PATTERN_SPECIALS, p[i]))
			return true;
	return false;
}

static int find_aux(lua_State *L, bool find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls), *p = luaL_checklstring(L, 2, &lp);
	ptrdiff_t init = start_of(luaL_optinteger(L, 3, 1), ls);
	const char *s1, *e;
	bool anchor;
	struct ks_pattern m;

	if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
		const char *at = memmem(s + init, ls - (size_t)init, p, lp);

		if (!at) {
			lua_pushnil(L);
			return 1;
		}
		lua_pushinteger(L, at - s + 1);
		lua_pushinteger(L, at - s + (ptrdiff_t)lp);
		return 2;
	}
	anchor = lp > 0 && *p == '^';
	ks_pattern_init(&m, L, s, ls, p + anchor, lp - anchor);
	s1 = s + init;
	do {
		m.level = m.depth = 0;
		e = ks_pattern_match(&m, s1, p + anchor);
		if (e && find) {
			lua_pushinteger(L, s1 - s + 1);
			lua_pushinteger(L, e - s);
			return ks_pattern_push_captures(&m, NULL, NULL) + 2;
		}
		if (e)
			return ks_pattern_push_captures(&m, s1, e);
	} while (s1++ < m.src_end && !anchor);
	lua_pushnil(L);
	return 1;
}

static int find(lua_State *L)
{
	return find_aux(L, true);
}

static int match_fn(lua_State *L)
{
	return find_aux(L, false);
}

static int gmatch_next(lua_State *L)
{
	size_t ls, lp;
	const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
	const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
	const char *src, *e;
	struct ks_pattern m;

	ks_pattern_init(&m, L, s, ls, p, lp);
	for (src = s + (size_t)lua_tointeger(L, lua_upvalueindex(3)); src <= m.src_end; src++) {
		m.level = m.depth = 0;
		e = ks_pattern_match(&m, src, p);
		if (e) {
			lua_pushinteger(L, e - s + (e == src));
			lua_replace(L, lua_upvalueindex(3));
			return ks_pattern_push_captures(&m, src, e);
		}
	}
	return 0;
}

static int gmatch(lua_State *L)
{
	luaL_checkstring(L, 1);
	luaL_checkstring(L, 2);
	lua_settop(L, 2);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, gmatch_next, 3);
	return 1;
}

/* The replacement string at 3, its %0-%9 expanded, for the match [s, e). */
static void add_string(struct ks_pattern *m, luaL_Buffer *b, const char *s, const char *e)
{
	size_t l, i;
	const char *r = lua_tolstring(m->L, 3, &l);

	ks_pattern_step(m, l);
	for (i = 0; i < l; i++) {
		if (r[i] != KS_PATTERN_ESC) {
			luaL_addchar(b, r[i]);
		} else if (++i == l) {
			luaL_error(m->L, "invalid use of '%%' in replacement string");
		} else if (!isdigit((unsigned char)r[i])) {
			luaL_addchar(b, r[i]);
		} else if (r[i] == '0') {
			luaL_addlstring(b, s, (size_t)(e - s));
		} else {
			ks_pattern_push_capture(m, r[i] - '1', s, e);
			luaL_addvalue(b);
		}
	}
}

static void add_value(struct ks_pattern *m, luaL_Buffer *b, const char *s, const char *e)
{
	lua_State *L = m->L;

	switch (lua_type(L, 3)) {
	case LUA_TNUMBER:
	case LUA_TSTRING:
		add_string(m, b, s, e);
		return;
	case LUA_TFUNCTION:
		lua_pushvalue(L, 3);
		lua_call(L, ks_pattern_push_captures(m, s, e), 1);
		break;
	default: /* a table */
		ks_pattern_push_capture(m, 0, s, e);
		lua_gettable(L, 3);
		break;
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		lua_pushlstring(L, s, (size_t)(e - s));
	} else if (!lua_isstring(L, -1)) {
		luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	}
	luaL_addvalue(b);
}

static int gsub(lua_State *L)
{
	size_t ls, lp;
	const char *src = luaL_checklstring(L, 1, &ls), *p = luaL_checklstring(L, 2, &lp);
	int tr = lua_type(L, 3);
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1), n = 0;
	bool anchor = lp > 0 && *p == '^';
	const char *e;
	luaL_Buffer b;
	struct ks_pattern m;

	luaL_argcheck(L,
		      tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
			      tr == LUA_TTABLE,
		      3, "string/function/table expected");
	ks_pattern_init(&m, L, src, ls, p + anchor, lp - anchor);
	luaL_buffinit(L, &b);
	while (n < max) {
		m.level = m.depth = 0;
		e = ks_pattern_match(&m, src, p + anchor);
		if (e) {
			n++;
			add_value(&m, &b, src, e);
		}
		if (e && e > src)
			src = e;
		else if (src < m.src_end)
			luaL_addchar(&b, *src++);
		else
			break;
		if (anchor)
			break;
	}
	luaL_addlstring(&b, src, (size_t)(m.src_end - src));
	luaL_pushresult(&b);
	lua_pushinteger(L, (lua_Integer)n);
	return 2;
}

void ks_lua_open_patterns(lua_State *L, int idx)
{
	static const luaL_Reg fns[] = {
		{ "find", find },
		{ "match", match_fn },
		{ "gmatch", gmatch },
		{ "gsub", gsub },
	};
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		lua_pushcfunction(L, fns[i].func);
		lua_setfield(L, idx, fns[i].name);
	}
}
