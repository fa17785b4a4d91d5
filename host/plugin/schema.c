/*
 * schema.c: config_schema, and the values of a plugin's settings checked against it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/internal.h"
#include "plugin/schema.h"

static const char *const types[] = { "string", "number", "boolean" };
static const int lua_types[] = { LUA_TSTRING, LUA_TNUMBER, LUA_TBOOLEAN };
static const char *const fields[] = { "type", "default", "required", "enum", "description" };

/* The index in types of the entry's type at e (checked), or -1. */
static int type_of(lua_State *L, int e)
{
	const char *s;
	int i = -1;

	lua_getfield(L, e, "type");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
	for (size_t k = 0; k < KS_ARRAY_SIZE(types); k++)
		if (strcmp(s, types[k]) == 0)
			i = (int)k;
	lua_pop(L, 1);
	return i;
}

/* Is the value at v one of the entry e's enum (true when it has none)? */
static bool in_enum(lua_State *L, int e, int v)
{
	bool found = false;
	int i, n;

	lua_getfield(L, e, "enum");
	n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
	found = n == 0;
	for (i = 1; i <= n && !found; i++) {
		lua_rawgeti(L, -1, i);
		found = lua_rawequal(L, -1, v);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return found;
}

/* The entry's enum as "a, b, c", into buf. */
static const char *enum_text(lua_State *L, int e, char *buf, size_t cap)
{
	size_t used = 0;
	int i, n;

	buf[0] = '\0';
	lua_getfield(L, e, "enum");
	n = (int)lua_objlen(L, -1);
	for (i = 1; i <= n && used < cap; i++) {
		lua_rawgeti(L, -1, i);
		lua_pushvalue(L, -1);
		used += (size_t)snprintf(buf + used, cap - used, "%s%s", i > 1 ? ", " : "",
					 lua_type(L, -1) == LUA_TBOOLEAN
						 ? (lua_toboolean(L, -1) ? "true" : "false")
						 : lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	return buf;
}

/* Only the fields of an entry, each of its kind. */
static bool check_fields(lua_State *L, int e, const char *name, char **err)
{
	const char *k;
	bool known;

	lua_pushnil(L);
	while (lua_next(L, e)) {
		lua_pop(L, 1);
		known = false;
		k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
		for (size_t i = 0; i < KS_ARRAY_SIZE(fields); i++)
			known |= strcmp(k, fields[i]) == 0;
		if (!known) {
			*err = ks_xasprintf("config_schema.%s.%s is not a schema field (type, "
					    "default, required, enum, description)",
					    name, k);
			lua_pop(L, 1);
			return false;
		}
	}
	lua_getfield(L, e, "required");
	lua_getfield(L, e, "description");
	if (!lua_isnil(L, -2) && !lua_isboolean(L, -2))
		*err = ks_xasprintf("config_schema.%s.required must be a boolean", name);
	else if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		*err = ks_xasprintf("config_schema.%s.description must be a string", name);
	lua_pop(L, 2);
	return !*err;
}

/* One entry of the schema, at e, for setting name. */
static bool check_entry(lua_State *L, int e, const char *name, char **err)
{
	int type, i, n;

	if (!lua_istable(L, e)) {
		*err = ks_xasprintf("config_schema.%s must be a table {type = ...}", name);
		return false;
	}
	if (!check_fields(L, e, name, err))
		return false;
	type = type_of(L, e);
	if (type < 0) {
		*err = ks_xasprintf("config_schema.%s.type must be one of string, number, boolean",
				    name);
		return false;
	}
	lua_getfield(L, e, "enum");
	n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
	if (!lua_isnil(L, -1) && n == 0)
		*err = ks_xasprintf("config_schema.%s.enum must be a non-empty list", name);
	for (i = 1; i <= n && !*err; i++) {
		lua_rawgeti(L, -1, i);
		if (lua_type(L, -1) != lua_types[type])
			*err = ks_xasprintf("config_schema.%s.enum[%d] must be a %s", name, i,
					    types[type]);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_getfield(L, e, "default");
	if (!*err && !lua_isnil(L, -1) && lua_type(L, -1) != lua_types[type])
		*err = ks_xasprintf("config_schema.%s.default must be a %s", name, types[type]);
	else if (!*err && !lua_isnil(L, -1) && !in_enum(L, e, lua_gettop(L)))
		*err = ks_xasprintf("config_schema.%s.default must be one of its enum", name);
	lua_pop(L, 1);
	return !*err;
}

bool ks_lua_schema_check(lua_State *L, int idx, char **err)
{
	idx = lua_absindex_compat(L, idx);
	if (lua_isnil(L, idx))
		return true;
	if (!lua_istable(L, idx)) {
		*err = ks_xstrdup("config_schema must be a table of setting = {type = ...}");
		return false;
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			*err = ks_xstrdup("config_schema's keys must be setting names (strings)");
			lua_pop(L, 2);
			return false;
		}
		if (!check_entry(L, lua_gettop(L), lua_tostring(L, -2), err)) {
			lua_pop(L, 2);
			return false;
		}
		lua_pop(L, 1);
	}
	return true;
}

/* Set t[name] from the given value v (or the entry's default). Pops nothing. */
static bool apply_one(lua_State *L, int t, int e, const char *name, const cJSON *v, bool complete,
		      char **err)
{
	char buf[256];
	int type = type_of(L, e);

	if (v && !cJSON_IsNull(v))
		ks_lua_push_json(L, v);
	else
		lua_getfield(L, e, "default");
	if (lua_isnil(L, -1)) {
		lua_getfield(L, e, "required");
		if (complete && lua_toboolean(L, -1))
			*err = ks_xasprintf("setting '%s' is required", name);
		lua_pop(L, 1);
	} else if (lua_type(L, -1) != lua_types[type]) {
		*err = ks_xasprintf("setting '%s' must be a %s", name, types[type]);
	} else if (!in_enum(L, e, lua_gettop(L))) {
		*err = ks_xasprintf("setting '%s' must be one of %s", name,
				    enum_text(L, e, buf, sizeof(buf)));
	}
	if (*err) {
		lua_pop(L, 1);
		return false;
	}
	lua_setfield(L, t, name);
	return true;
}

int ks_lua_schema_apply(lua_State *L, int idx, const cJSON *settings, bool complete, char **err)
{
	const cJSON *given = cJSON_IsObject(settings) ? settings : NULL, *s;
	int t;

	idx = lua_absindex_compat(L, idx);
	if (settings && !cJSON_IsNull(settings) && !cJSON_IsObject(settings)) {
		*err = ks_xstrdup("the settings must be a mapping of name: value");
		return -EINVAL;
	}
	cJSON_ArrayForEach(s, given)
	{
		bool known = false;
		if (lua_istable(L, idx)) {
			lua_getfield(L, idx, s->string);
			known = !lua_isnil(L, -1);
			lua_pop(L, 1);
		}
		if (!known) {
			*err = ks_xasprintf("setting '%s' is not in the plugin's config_schema",
					    s->string);
			return -EINVAL;
		}
	}
	lua_newtable(L);
	t = lua_gettop(L);
	if (lua_istable(L, idx)) {
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			const char *name = lua_tostring(L, -2);
			bool ok = apply_one(L, t, lua_gettop(L), name,
					    cJSON_GetObjectItemCaseSensitive(given, name), complete,
					    err);
			lua_pop(L, 1);
			if (!ok) {
				lua_settop(L, t - 1);
				return -EINVAL;
			}
		}
	}
	return 0;
}
