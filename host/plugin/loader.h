#pragma once
/*
 * loader.h: the plugins of a directory (every *.lua in it) and of ConfigMaps labelled
 * kupenstack.io/plugin=true (every *.lua key), each behind a controller, reloaded when
 * its file or ConfigMap key (or its settings, NAME.config.yaml beside it) changes. Each
 * version is vetted first (plugin/candidate.h: the table, its config_schema and settings,
 * and for a file DIR/NAME.lua the fixtures of DIR/NAME/fixtures/, run by the vetter
 * asynchronously: the running version serves meanwhile, and a newer version cancels the
 * vet of an older one). A version that fails
 * is refused with a log line naming the file and the problem, a load error in the
 * metrics, and for a ConfigMap a Warning Event PluginRejected on it; the running one
 * keeps going. A reload
 * with the same shape swaps the code under the running controller (in-flight
 * reconciles of the old version are cancelled and retried, every object is
 * enqueued at low priority); one that changes the kind, finalizer, owns or watches
 * gets a new controller.
 */
#include <stdbool.h>

#include <uv.h>

#include "controller.h"
#include "lua/engine.h"
#include "plugin/candidate.h"
#include "manager.h"

struct ks_loader;

struct ks_loader_opts {
	const char *dir; /* plugins directory; NULL: none */
	/* Also load the *.lua keys of ConfigMaps labelled kupenstack.io/plugin=true in this
	 * namespace (watched, so an edit reloads); NULL: none. */
	const char *configmap_namespace;
	double poll_seconds;	 /* how often files are checked; 0: 1 s */
	unsigned concurrency;	 /* overrides the plugins' own when non-zero */
	double resync;		 /* seconds; overrides the plugins' own when > 0 */
	struct ks_lua_host host; /* for the plugins' states (copied) */
	/* A new version's shipped checks (its fixtures), run while the loop serves the rest;
	 * start NULL: none. */
	struct ks_candidate_vetter vet;
	struct ks_manager *manager; /* not owned */
	struct ks_kube *kube;
	struct ks_events *events;
	struct ks_metrics *metrics;
	/* The message bus plugins' 'consumes' subscribe to (amqp://...); NULL: none. */
	const char *amqp_url;
};

/* Load every plugin of o->dir now; controllers start with ks_loader_start(). */
struct ks_loader *ks_loader_new(uv_loop_t *loop, const struct ks_loader_opts *o);
/* Start the controllers (on becoming leader) and watching the directory. */
void ks_loader_start(struct ks_loader *l);
/* Stop: controllers drain in-flight work, then done runs. */
void ks_loader_stop(struct ks_loader *l, void (*done)(void *data), void *data);
void ks_loader_free(struct ks_loader *l);
/* Plugins loaded, and load failures so far (for tests and metrics). */
size_t ks_loader_plugins(const struct ks_loader *l);
unsigned long ks_loader_failures(const struct ks_loader *l);
/* Is every plugin's consumer of the message bus up (or never failed)? why says which
 * is not. */
bool ks_loader_consumers_ready(const struct ks_loader *l, char *why, size_t cap);
