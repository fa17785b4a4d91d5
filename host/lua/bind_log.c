/*
 * bind_log.c: ks.core.log: debug/info/warn/error(msg, fields) as logfmt lines on the
 * host's log, labelled with the plugin. Fields that look like secrets are redacted.
 */
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>

#include "ks.h"
#include "log.h"
#include "lua/bind.h"
#include "lua/engine.h"

static bool secret_key(const char *k)
{
	static const char *const words[] = { "password", "secret", "token", "credential",
					     "private" };
	size_t i;

	for (i = 0; i < KS_ARRAY_SIZE(words); i++)
		if (strcasestr(k, words[i]))
			return true;
	return false;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++)
		if (*s <= ' ' || *s == '"' || *s == '=' || *s == '\\')
			return true;
	return false;
}

/* Append " key=value" for each string-keyed field of the table at idx. */
static void fields(lua_State *L, int idx, struct ks_buf *b)
{
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		const char *v;

		switch (lua_type(L, -1)) {
		case LUA_TSTRING:
		case LUA_TNUMBER:
			v = lua_tostring(L,
					 -1); /* converts a number in place: a value, not the key */
			break;
		case LUA_TBOOLEAN:
			v = lua_toboolean(L, -1) ? "true" : "false";
			break;
		default:
			v = lua_typename(L, lua_type(L, -1));
		}
		if (k && secret_key(k))
			v = "[redacted]";
		if (k)
			ks_buf_printf(b, " %s=%s", k, needs_quotes(v) ? ks_logq(v) : v);
		lua_pop(L, 1);
	}
}

static int emit(lua_State *L, enum ks_log_level level)
{
	const char *msg = luaL_checkstring(L, 1);
	struct ks_buf b;

	if (!ks_log_enabled(level))
		return 0;
	ks_buf_init(&b);
	ks_buf_printf(&b, "plugin=%s", ks_logq(ks_lua_name(ks_lua_from(L))));
	if (lua_istable(L, 2)) {
		lua_settop(L, 2);
		fields(L, 2, &b);
	}
	ks_log(level, msg, "%s", b.data);
	ks_buf_deinit(&b);
	return 0;
}

static int debug(lua_State *L)
{
	return emit(L, KS_LOG_DEBUG);
}

static int info(lua_State *L)
{
	return emit(L, KS_LOG_INFO);
}

static int warn(lua_State *L)
{
	return emit(L, KS_LOG_WARN);
}

static int error(lua_State *L)
{
	return emit(L, KS_LOG_ERROR);
}

int ks_lua_open_log(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "debug", debug }, { "info", info }, { "warn", warn },
		{ "error", error }, { NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
