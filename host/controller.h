#pragma once
/*
 * controller.h: the reconcile loop for one kind: the shared cache's changes -> a work
 * queue -> an asynchronous reconcile callback -> the result: status written (only when
 * it changed), finalizer added before the first reconcile and removed after the last,
 * retries with per-key backoff, requeue_after, Events on failure, metrics.
 *
 * Updates that change only .status or metadata.resourceVersion do not enqueue.
 * Changes to objects the kind owns (ownerReferences) and to watched related kinds
 * enqueue the owner or the mapped keys. A periodic resync with jitter enqueues every
 * object at low priority.
 */
#include <stdbool.h>

#include <cJSON.h>
#include <uv.h>

#include "cache.h"
#include "kube.h"
#include "manager.h"
#include "queue.h"
#include "status.h"

struct ks_controller;
struct ks_reconcile;
struct ks_events;
struct ks_metrics;

/*
 * Called for each key handed out, with the object (ks_reconcile_object). It must
 * eventually call ks_reconcile_done() exactly once, from the loop.
 */
typedef void (*ks_reconcile_cb)(struct ks_controller *c, struct ks_reconcile *r, void *data);

struct ks_controller_opts {
	const char *name;	 /* the controller label in metrics and logs; copied */
	struct ks_kube_res res;	 /* the kind reconciled; strings copied */
	const char *api_version; /* "group/version", for Events; copied */
	const char *kind;	 /* for Events; copied */
	const char *finalizer;	 /* NULL: none; copied */
	unsigned concurrency;	 /* 0: 1 */
	double resync;		 /* seconds between full resyncs (±10 %); 0: none */
	ks_reconcile_cb reconcile;
	void *data;
	struct ks_events *events;   /* may be NULL */
	struct ks_metrics *metrics; /* may be NULL */
	double qps;		    /* the queue's overall retry limit; 0: 10/s burst 100 */
	/* Only objects with this label (and value) are reconciled; NULL: all. A value
	 * "!v" selects objects without the label or with another value. Copied. */
	const char *selector_key, *selector_value;
	/* Objects whose name matches one of these comma-separated names ("p*": a prefix)
	 * are not reconciled (no finalizer either); NULL: none. Copied. */
	const char *skip_names;
	/* Dry run: the status and finalizer patches are printed (dryrun.h), not sent; the
	 * reconcile goes on as if they had been made. */
	bool dry_run;
};

/* A stopped controller. Never NULL. kube and manager are not owned. */
struct ks_controller *ks_controller_new(uv_loop_t *loop, struct ks_kube *kube, struct ks_manager *m,
					const struct ks_controller_opts *o);
/* Start handing out keys (the caches are shared and may already be syncing). */
void ks_controller_start(struct ks_controller *c);
/*
 * Stop: no new keys; in-flight reconciles finish; then drained runs (may be NULL).
 * The controller stays valid until ks_controller_free().
 */
void ks_controller_stop(struct ks_controller *c, void (*drained)(void *data), void *data);
/* The host is going away before the drain ended: reconciles that finish from now on write
 * nothing (no status, no finalizer, no Event) and just end, so that no request is left
 * behind when the clients are freed. */
void ks_controller_abandon(struct ks_controller *c);
/* Free a stopped (drained) or never started controller. */
void ks_controller_free(struct ks_controller *c);

/* Change the reconcile callback (a plugin replaced); in-flight ones finish as they are. */
void ks_controller_set_reconcile(struct ks_controller *c, ks_reconcile_cb cb, void *data);
/* Changes to objects of res whose ownerReferences name our kind enqueue the owner. */
void ks_controller_own(struct ks_controller *c, const struct ks_kube_res *res);
/* Changes to objects of res call map, which enqueues keys with ks_controller_enqueue(). */
typedef void (*ks_controller_map_cb)(struct ks_controller *c, const struct ks_cache_obj *obj,
				     void *data);
void ks_controller_watch(struct ks_controller *c, const struct ks_kube_res *res,
			 ks_controller_map_cb map, void *data);
/* Enqueue key ("ns/name"); every key the cache holds at low priority. */
void ks_controller_enqueue(struct ks_controller *c, const char *key, enum ks_queue_prio prio);
void ks_controller_enqueue_all(struct ks_controller *c, enum ks_queue_prio prio);

const char *ks_controller_name(const struct ks_controller *c);
struct ks_cache *ks_controller_cache(struct ks_controller *c);
struct ks_queue *ks_controller_queue(struct ks_controller *c);
struct ks_events *ks_controller_events(struct ks_controller *c);

/* The reconcile at hand. The object belongs to r; the reconcile may keep pointers into
 * it until ks_reconcile_done(). */
const cJSON *ks_reconcile_object(const struct ks_reconcile *r);
const char *ks_reconcile_key(const struct ks_reconcile *r);
/* True when the object is being deleted and our finalizer is on it: finalize. */
bool ks_reconcile_deleting(const struct ks_reconcile *r);
/* Report the outcome (res is read during the call only). r is freed later. */
void ks_reconcile_done(struct ks_reconcile *r, const struct ks_outcome *res);
