#pragma once
/*
 * plugin.h: one loaded version of a Lua plugin: its sandboxed state, its validated
 * table (the contract of plugins/README.md), and the glue that runs its reconcile
 * and finalize for a controller.
 */
#include <stdbool.h>
#include <stddef.h>

#include "controller.h"
#include "lua/engine.h"
#include "plugin/consume.h"

#define KS_PLUGIN_API 1
#define KS_PLUGIN_MAX_KINDS 16

struct ks_plugin_kind {
	char *group, *version, *kind, *resource;
	struct ks_kube_res res;
	int map_ref; /* watches: registry ref of map(obj), or LUA_NOREF */
};

struct ks_plugin {
	char *name; /* file or ConfigMap name, for logs */
	struct ks_lua *lua;
	struct ks_plugin_kind self;
	char *api_version;		     /* "group/version" */
	char *finalizer;		     /* or NULL */
	char *selector_key, *selector_value; /* selector = { key = value }, or NULL */
	char *skip_names; /* skip_names = { "kube-*", ... } joined with ",", or NULL */
	unsigned concurrency;
	double resync;
	struct ks_lua_limits limits;
	struct ks_plugin_kind owns[KS_PLUGIN_MAX_KINDS];
	size_t nowns;
	struct ks_plugin_kind watches[KS_PLUGIN_MAX_KINDS];
	size_t nwatches;
	struct ks_plugin_consume consumes[KS_PLUGIN_MAX_CONSUMES]; /* plugin/consume.h */
	size_t nconsumes;
	int table_ref;	/* the plugin table */
	int schema_ref; /* its config_schema, or nil */
	int config_ref; /* ctx.config: the settings, or config_schema's defaults */
	int ctx_ref;	/* the ctx builder */
};

/*
 * Load src as plugin name in a new state: run the chunk, check the table it returns.
 * Returns the plugin, or NULL with *err (free it) naming the file and the field.
 */
struct ks_plugin *ks_plugin_load(const struct ks_lua_host *host, const char *name, const char *src,
				 size_t len, char **err);
/*
 * Set ctx.config from the operator's settings (a JSON object; NULL: none) checked
 * against p's config_schema, before p runs. Returns 0, or -EINVAL with *err (free it)
 * naming the setting, ctx.config unchanged. Without it, ctx.config holds the defaults.
 */
int ks_plugin_configure(struct ks_plugin *p, const cJSON *settings, char **err);
/* Cancel its tasks (their reconciles fail with "cancelled: why") and free it. */
void ks_plugin_free(struct ks_plugin *p, const char *why);
/* Do a and b reconcile the same way apart from their code (kind, finalizer, owns,
 * watches, concurrency, resync)? Then a swap needs no new controller. */
bool ks_plugin_same_shape(const struct ks_plugin *a, const struct ks_plugin *b);

/*
 * Run p's reconcile (finalize when finalize is true) on obj, key "ns/name", outside the
 * controller's flow (plugin tests, dry runs; ks_plugin_reconcile is built on it). done
 * gets the outcome once, valid during the call only, from the loop or before this
 * returns. obj is read during the call only. c (may be NULL) is named in log lines and
 * receives ctx.event (unless the host has a fake); without both, events are logged.
 */
typedef void (*ks_plugin_done_cb)(const struct ks_outcome *o, void *data);
void ks_plugin_run(struct ks_plugin *p, struct ks_controller *c, const cJSON *obj, const char *key,
		   bool finalize, ks_plugin_done_cb done, void *data);

/* The controller callback: data is a struct ks_plugin **, the slot holding the
 * current version (so a reload takes effect at the next reconcile). */
void ks_plugin_reconcile(struct ks_controller *c, struct ks_reconcile *r, void *data);
/* The watches' map callback: data is a struct ks_plugin_watch naming the slot and
 * which entry of 'watches' the changed object's kind is. */
struct ks_plugin_watch {
	struct ks_plugin **slot;
	size_t index;
};
void ks_plugin_map(struct ks_controller *c, const struct ks_cache_obj *obj, void *data);

/*
 * The controller of the plugin in *slot, on the same terms wherever one is made (the
 * running host's loader, the dry run): its kind, finalizer, selector, skipped names,
 * concurrency and resync as the plugin declares them unless o (the caller's events,
 * metrics, dry_run; concurrency and resync when non-zero) overrides them; reconciled by
 * ks_plugin_reconcile; the kinds it owns and watches added, watches[] (one per entry of
 * the plugin's watches, kept by the caller as long as the controller) filled. Stopped.
 */
struct ks_controller *ks_plugin_controller(uv_loop_t *loop, struct ks_kube *kube,
					   struct ks_manager *m, const char *name,
					   struct ks_plugin **slot, struct ks_plugin_watch *watches,
					   const struct ks_controller_opts *o);
