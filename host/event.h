#pragma once
/*
 * event.h: the Kubernetes Events (core/v1) recorder, as client-go's record package:
 * what the operator did to an object, shown by `kubectl describe` and `kubectl get
 * events`.
 *
 * Three filters stand between a call and the API server, in client-go's order:
 *   spam: a token bucket per involved object (burst, then one token per
 *         refill_seconds) that every call takes from, repeats too; an event
 *         beyond it is dropped and counted;
 *   dedup: an event identical to one sent within aggregate_window (same involved
 *         object uid, type, reason and message) is not created again: the existing
 *         Event is patched with count+1 and a new lastTimestamp (repeats that come
 *         before the first create went out are folded into it);
 *   cap:  at most 1000 Events wait to be sent or are in flight; beyond that, dropped.
 * At most 4096 dedup entries and 4096 token buckets are kept (least recently used
 * are forgotten first; a forgotten entry only costs a new Event, a forgotten bucket
 * a fresh burst).
 *
 * Sending happens later on the loop: ks_event() never blocks and never fails. A
 * rejected create (403, the namespace is gone or terminating, ...) is logged once
 * at warn with the server's message and counted as failed; transport errors, 429
 * and 5xx are retried twice (after 1 s and 2 s), then counted as failed. A patch
 * that finds the Event expired (404) creates it anew, count and firstTimestamp kept.
 * The host is single-threaded: nothing here locks.
 */
#include <uv.h>

#include <cJSON.h>

#include "ks.h"
#include "kube.h"

struct ks_events;

struct ks_events_opts {
	const char *component;	 /* source.component and reportingComponent; NULL: "kupenstack" */
	const char *host;	 /* source.host and reportingInstance; NULL: the hostname */
	unsigned burst;		 /* events per involved object before the bucket runs dry; 0: 25 */
	double refill_seconds;	 /* one token back per; 0: 300 (client-go: qps 1/300) */
	double aggregate_window; /* seconds an identical event folds into the last; 0: 600 */
};

/*
 * A recorder on loop sending through kube (not owned; it must outlive the recorder).
 * o may be NULL for every default; its strings are copied. Never NULL.
 */
struct ks_events *ks_events_new(uv_loop_t *loop, struct ks_kube *kube,
				const struct ks_events_opts *o);
/*
 * Cancel the requests in flight (their callbacks do not run), drop what waits to be
 * sent, and free the recorder once its timer is closed: the loop must run for that.
 * kube may be freed right after. NULL is a no-op.
 */
void ks_events_free(struct ks_events *e);

/*
 * Record an event about obj, the involved object as JSON (apiVersion, kind and
 * metadata.namespace/name/uid/resourceVersion are read; obj is not kept). type is
 * "Normal" or "Warning" (NULL: "Normal"); reason is CamelCase; the message is
 * formatted from fmt and cut at 1024 bytes (on a UTF-8 character boundary). The
 * Event goes to obj's namespace, or "default" for a cluster-scoped object. An obj
 * without metadata.name is counted as dropped, with a warn line.
 */
void ks_event(struct ks_events *e, const cJSON *obj, const char *type, const char *reason,
	      const char *fmt, ...) KS_PRINTF(5, 6);

struct ks_events_stats {
	unsigned long created; /* Events the server created */
	unsigned long patched; /* repeats the server counted into an existing Event */
	unsigned long dropped; /* spam filter, the pending cap, or no object name */
	unsigned long failed;  /* creates and patches the server refused, after retries */
};

void ks_events_get_stats(const struct ks_events *e, struct ks_events_stats *out);
