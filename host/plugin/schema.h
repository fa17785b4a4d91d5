#pragma once
/*
 * schema.h: a plugin's config_schema (the settings it takes: name -> {type, default,
 * required, enum, description}) checked when the plugin loads, and the operator's
 * values for those settings checked against it, giving the table the plugin sees as
 * ctx.config. The contract is in plugins/README.md, "Settings: config_schema".
 */
#include <stdbool.h>

#include <cJSON.h>
#include <lua.h>

/*
 * Is the value at idx a well-formed config_schema (nil is: no settings)? False with
 * *err (free it) naming the offending field: "config_schema.timeout.type must be one
 * of string, number, boolean".
 */
bool ks_lua_schema_check(lua_State *L, int idx, char **err);

/*
 * Push the settings table: each setting of the schema at idx (checked above; nil: none)
 * with its value from settings (a JSON object; NULL or null: none given) or else its
 * default. Returns 0, or -EINVAL with nothing pushed and *err (free it) naming the
 * setting: an unknown name, a value of the wrong type or outside enum, or (when
 * complete) a required setting without a value.
 */
int ks_lua_schema_apply(lua_State *L, int idx, const cJSON *settings, bool complete, char **err);
