#pragma once
/*
 * watch.h: a reflector for one kind of resource (as client-go's): LIST, then WATCH from
 * the list's resourceVersion with bookmarks, feeding a ks_cache. It reconnects with
 * backoff, relists on 410 Gone / Expired (the cache turns the new list into adds,
 * updates and synthetic deletes, so its handlers miss nothing and see nothing twice),
 * and treats a watch that stays silent past a deadline as dead.
 *
 * Backoff: 0.8 s doubling to 30 s, reset on success; a refused connection (the API
 * server restarting) is retried at most 1 s apart, so the host is back within about
 * a second of the server.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <uv.h>

#include "cache.h"
#include "kube.h"

/* The stream decoder: newline-delimited watch events, as the API server sends them. */
enum ks_watch_type {
	KS_WATCH_ADDED,
	KS_WATCH_MODIFIED,
	KS_WATCH_DELETED,
	KS_WATCH_BOOKMARK,
	KS_WATCH_ERROR,
};

/* Called per event; obj belongs to the decoder and is freed after the call. */
typedef void (*ks_watch_event_cb)(enum ks_watch_type type, cJSON *obj, void *data);

struct ks_watch_decoder {
	struct ks_buf buf;
	size_t scanned; /* bytes of buf known to hold no newline */
	size_t max_event;
};

void ks_watch_decoder_init(struct ks_watch_decoder *d, size_t max_event);
void ks_watch_decoder_deinit(struct ks_watch_decoder *d);
/*
 * Feed n bytes; cb runs for every complete event. Returns 0, -EBADMSG for a line that
 * is not a watch event (*err says why; the caller frees it), or -EMSGSIZE for an event
 * past max_event. After an error the decoder must be reset (deinit + init).
 */
int ks_watch_decode(struct ks_watch_decoder *d, const char *p, size_t n, ks_watch_event_cb cb,
		    void *data, char **err);

struct ks_watch;

struct ks_watch_opts {
	struct ks_kube_res res;
	const char *namespace;	    /* NULL: all namespaces */
	const char *label_selector; /* NULL: everything */
	long page_size;		    /* LIST limit; 0 means 500 */
	/* The server ends each watch after a random timeout in [min, max] s; 0 means
	 * 300..600. A watch silent for that long plus silence_grace is reopened. */
	unsigned timeout_min, timeout_max;
	double silence_grace; /* 0 means 30 s */
	/* Called (may be NULL) after each successful LIST has been applied. */
	void (*on_synced)(struct ks_watch *w, void *data);
	void *data;
};

/* Create a stopped reflector feeding cache. kube and cache are not owned. Never NULL. */
struct ks_watch *ks_watch_new(uv_loop_t *loop, struct ks_kube *kube, struct ks_cache *cache,
			      const struct ks_watch_opts *o);
/* Start: LIST, then WATCH. Returns 0. */
int ks_watch_start(struct ks_watch *w);
/* Stop and free once its timer is closed; no callback runs after this call. */
void ks_watch_free(struct ks_watch *w);

bool ks_watch_synced(const struct ks_watch *w);
/* The resourceVersion the reflector has seen up to. */
const char *ks_watch_resource_version(const struct ks_watch *w);

struct ks_watch_stats {
	unsigned long lists;   /* LISTs completed */
	unsigned long watches; /* WATCH streams opened */
	unsigned long events;  /* events applied */
	unsigned long relists; /* relists after 410 Gone */
	unsigned long stalls;  /* watches reopened for silence */
	unsigned long errors;  /* failed requests and bad streams */
};

void ks_watch_get_stats(const struct ks_watch *w, struct ks_watch_stats *out);
