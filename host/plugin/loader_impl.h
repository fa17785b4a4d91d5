#pragma once
/*
 * loader_impl.h: what the parts of the loader (plugin/loader.h) share: the loader, its
 * slots (one per plugin file or ConfigMap key) and their bindings (a plugin version's
 * controller). loader.c runs the loader; binding.c starts, drains and retires a binding.
 */
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "list.h"
#include "json.h"
#include "plugin/candidate.h"
#include "plugin/loader.h"
#include "plugin/plugin.h"

/* One plugin version's controller; retired bindings live until drained. */
struct binding {
	struct ks_plugin *plugin; /* the slot the controller's callbacks read */
	struct ks_controller *ctrl;
	struct ks_plugin_watch watches[KS_PLUGIN_MAX_KINDS];
	struct ks_consumers *consumers; /* while the controller runs (plugin/consume.h) */
	struct ks_loader *l;
	struct ks_list link; /* in l->drains while its controller drains */
};

struct slot {
	char *path;	    /* a file, or "configmap:ns/name/key" */
	uint64_t text_hash; /* ConfigMap sources: what was loaded */
	bool configmap;
	uint64_t stamp; /* files: the mtime and size of the file and its settings */
	bool seen;
	char *shadowed;		 /* files: "Kind.group" a ConfigMap plugin overrides, else NULL */
	struct binding *b;	 /* NULL while the file has never loaded, or is shadowed */
	struct vetting *vetting; /* a new version whose checks run (version.c), or NULL */
	struct slot *next;
};

struct ks_loader {
	uv_loop_t *loop;
	struct ks_loader_opts o;
	char *dir;
	uv_timer_t timer;
	struct slot *slots;
	struct ks_plugin *zombies[16]; /* replaced versions finishing their reconciles */
	size_t nzombies;
	uv_fs_event_t fs_event; /* the directory changed: scan soon */
	uv_timer_t debounce;
	bool fs_watching;
	bool stopping_free;
	bool fs_open; /* initialised and its close callback not run yet */
	int closing;  /* handles whose close callback is due; l is freed after the last */
	struct ks_manager *cm_manager; /* ConfigMaps of configmap_namespace, or NULL */
	struct ks_cache *cm_cache;
	struct ks_cache_handler cm_h;
	bool started, stopping;
	bool deferred; /* started, waiting for the ConfigMaps' first list */
	double deferred_since;
	size_t draining;
	struct ks_list drains; /* struct binding, stopped and not drained yet */
	unsigned long failures;
	struct ks_plugin_metrics *pm; /* kupenstack_plugin_* series */
	void (*done)(void *data);
	void *done_data;
};

/* binding.c */

/* A controller for p (named name), started when the loader runs. Never NULL. */
struct binding *ks_binding_new(struct ks_loader *l, struct ks_plugin *p, const char *name);
/* Start b's controller, and its consumers of the message bus. */
void ks_binding_run(struct ks_loader *l, struct binding *b);
/* Stop b's consumers (before its controller goes). */
void ks_binding_stop_consumers(struct binding *b);
/* Stop b's consumers and its controller; b is freed (ks_binding_retired) once its
 * in-flight reconciles are done. */
void ks_binding_drain(struct ks_loader *l, struct binding *b);
/* Cancel b's plugin's tasks (why says why), then drain b. */
void ks_binding_retire(struct ks_loader *l, struct binding *b, const char *why);
/* Free a drained b (the drain's callback; also called to end a drain that hangs). */
void ks_binding_retired(void *b);
/* old, replaced under a running controller, is freed once its reconciles have finished
 * (ks_loader_reap_versions), or at once when none runs. */
void ks_loader_retire_version(struct ks_loader *l, struct ks_plugin *old);
/* Free the replaced versions that have finished (all: every one). */
void ks_loader_reap_versions(struct ks_loader *l, bool all);
/* Stopping and nothing draining any more: call the stop's done callback (once). */
void ks_loader_maybe_done(struct ks_loader *l);

/* version.c */

/* Take in c, a new version of s's plugin (cm: the ConfigMap it comes from, or NULL), or
 * refuse it (logged, counted, and for a ConfigMap an Event on cm); the running version
 * keeps going when it is refused. A file with fixtures is taken in or refused later, when
 * the vetter's verdict comes (a newer version first cancels the vet of the older one). */
void ks_loader_load_text(struct ks_loader *l, struct slot *s, const struct ks_candidate *c,
			 const cJSON *cm);
/* Cancel the vet of s's new version, if one runs (the version is dropped). */
void ks_loader_cancel_vet(struct ks_loader *l, struct slot *s);
/* Read the plugin file of s and take it in (ks_loader_load_text). */
void ks_loader_load(struct ks_loader *l, struct slot *s);
/* Files shadowed by a kind no ConfigMap plugin reconciles any more load again. */
void ks_loader_unshadow(struct ks_loader *l);

/* source_dir.c */

/* Is name a plugin's file name (X.lua, not hidden, not README.lua)? */
bool ks_loader_is_plugin_file(const char *name);
/* The slot of path (a file's, or configmap), created when there is none, marked seen.
 * Takes path (freed when the slot has its own). */
struct slot *ks_loader_slot(struct ks_loader *l, char *path, bool configmap);
/* Load what changed in the directory, retire what went. */
void ks_loader_scan(struct ks_loader *l);
/* The directory changed (uv_fs_event_cb): scan once the changes have settled. */
void ks_loader_dir_changed(uv_fs_event_t *h, const char *file, int events, int status);

/* source_configmap.c */

/* Watch the ConfigMaps of o.configmap_namespace (sets cm_manager, cm_cache, cm_h). */
void ks_loader_watch_configmaps(struct ks_loader *l);
/* Have the ConfigMaps been listed? */
bool ks_loader_configmaps_synced(struct ks_loader *l);
/* The same, warning every 10 s while they have not. */
bool ks_loader_configmaps_listed(struct ks_loader *l);
