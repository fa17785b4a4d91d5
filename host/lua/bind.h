#pragma once
/*
 * bind.h: what the bind_<x>.c files share: their openers, JSON <-> Lua conversion,
 * and the error values they return.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <lua.h>

/* Register every ks.core.<x> opener in the state's preload table. */
void ks_lua_open_all(lua_State *L);
/* Add (or replace) the opener of a host module offered by one kind of state only
 * (`kupenstack exec`'s ks.core.script). */
void ks_lua_add_preload(lua_State *L, const char *name, lua_CFunction open);
/* Push the opener of host module name; false (nothing pushed) if there is none. */
bool ks_lua_push_preload(lua_State *L, const char *name);

int ks_lua_open_json(lua_State *L);
int ks_lua_open_yaml(lua_State *L);
int ks_lua_open_log(lua_State *L);
int ks_lua_open_time(lua_State *L);
int ks_lua_open_http(lua_State *L);
int ks_lua_open_kube(lua_State *L);
/* kube.batch, part of ks.core.kube (bind_kube_batch.c). */
int ks_lua_kube_batch(lua_State *L);
int ks_lua_open_config(lua_State *L);
int ks_lua_open_metrics(lua_State *L);
int ks_lua_open_helm(lua_State *L);
int ks_lua_open_fault(lua_State *L);
int ks_lua_open_amqp(lua_State *L);
int ks_lua_open_transfer(lua_State *L);
int ks_lua_open_crypto(lua_State *L);
int ks_lua_open_chart(lua_State *L);

/*
 * JSON <-> Lua. Objects become tables; arrays become tables with the array
 * metatable (so they encode back as arrays, empty ones too); null becomes
 * json.null (a light userdata). Depth is limited to 128.
 */
void ks_lua_push_json(lua_State *L, const cJSON *v);
/* The value at idx as JSON, or NULL with *err (static text) set. */
cJSON *ks_lua_to_json(lua_State *L, int idx, const char **err);
/* Push the array metatable. */
void ks_lua_push_array_mt(lua_State *L);
/* The json.null sentinel. */
void ks_lua_push_null(lua_State *L);
bool ks_lua_is_null(lua_State *L, int idx);

/*
 * Push the error table {code=, reason=, message=} (tostring gives "reason: message")
 * after a nil: the `return nil, err` convention. Returns 2.
 */
/* The plural resource name of kind ("NetworkPolicy" -> "networkpolicies") into out. */
void ks_lua_kube_plural(const char *kind, char *out, size_t cap);

int ks_lua_fail(lua_State *L, long code, const char *reason, const char *message);
