#pragma once
/*
 * controller_impl.h: the controller's state, shared by controller.c (wiring) and
 * reconcile.c (the flow of one key). Nothing else includes it.
 */
#include "controller.h"

struct source;

struct ks_controller {
	uv_loop_t *loop;
	struct ks_kube *kube;
	struct ks_manager *manager;
	char *selector_key, *selector_value, *skip_names;
	char *name, *group, *version, *resource, *api_version, *kind, *finalizer;
	struct ks_kube_res res;
	double resync;
	ks_reconcile_cb reconcile;
	void *data;
	struct ks_events *events;
	struct ks_metrics *metrics;
	struct ks_queue *queue;
	struct ks_cache *cache;
	/* key -> the resourceVersion (uintptr_t) of the object our last write for it
	 * returned, until the cache holds that version or a newer one (reconcile.c) */
	struct ks_map *written;
	struct ks_cache_handler h;
	struct source *sources;
	uv_timer_t resync_timer;
	bool started;
	bool dry_run;
	bool drained_done;
	bool abandoned; /* ks_controller_abandon(): finishing reconciles write nothing */
	void (*drained)(void *data);
	void *drained_data;
};

/* Does obj (JSON) carry the controller's selector label? */
bool ks_controller_selects(const struct ks_controller *c, const cJSON *obj);

/* The queue's worker: one key's reconcile (reconcile.c). */
void ks_controller_work(struct ks_queue *q, const char *key, void *data);
