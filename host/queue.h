#pragma once
/*
 * queue.h: a controller's work queue of string keys ("namespace/name"), with
 * client-go workqueue semantics on the single-threaded libuv loop.
 *
 * - Dedup: a key added while it waits is queued once. A key is never handed out
 *   while it is in flight (handed to the worker and not yet ks_queue_done()); a
 *   key added meanwhile is marked dirty and handed out again after its done.
 * - Two priorities: KS_QUEUE_HIGH (watch events) is always served before
 *   KS_QUEUE_LOW (initial list, resync, plugin reloads); a waiting low key that
 *   gets a high add moves up. Within a priority, keys go out in add order.
 * - Concurrency K: at most K keys in flight at once. Reconciles are
 *   asynchronous, so "in flight" lasts until the worker calls ks_queue_done().
 * - Delayed adds (requeue_after) and rate-limited adds (errors): one uv timer over
 *   a min-heap of deadlines; client-go's DefaultControllerRateLimiter, i.e. the
 *   max of a per-key exponential backoff (5 ms doubling to 1000 s, here with
 *   +-10% jitter) and an overall token bucket (10 qps, burst 100).
 * - Metrics: client-go's workqueue_* families, labelled name=<queue name>.
 *
 * The worker callback always runs from the loop, never from inside a ks_queue_*
 * call, so it may call any ks_queue_* function, ks_queue_free() included.
 * Every operation is O(1) or O(log n) in the number of keys.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "metrics.h"

enum ks_queue_prio {
	KS_QUEUE_HIGH,
	KS_QUEUE_LOW,
};

struct ks_queue;

/*
 * Called from the loop with a key to reconcile. key stays valid until
 * ks_queue_done(q, key), which the worker must call exactly once per hand-out,
 * now or later (after async I/O), success or not.
 */
typedef void (*ks_queue_work_cb)(struct ks_queue *q, const char *key, void *data);
/* Called once from the loop after ks_queue_shut_down(), when nothing is in flight. */
typedef void (*ks_queue_drain_cb)(struct ks_queue *q, void *data);

struct ks_queue_opts {
	const char *name;      /* the metrics label name=; copied; NULL: "" */
	unsigned concurrency;  /* 0: 1 */
	ks_queue_work_cb work; /* required */
	void *data;
	/* Per-key exponential backoff: base * 2^failures, at most max_delay. */
	double base_delay; /* seconds; 0: 0.005 */
	double max_delay;  /* seconds; 0: 1000 */
	/* Each backoff is scaled by a uniform factor in [1 - jitter, 1 + jitter], then
	 * capped at max_delay. 0: 0.1; negative: no jitter (client-go's behaviour). */
	double jitter;
	/* Overall token bucket shared by all keys. 0: 10 qps, burst 100; qps < 0: none. */
	double qps;
	unsigned burst;
	/* Where the workqueue_* metrics go. NULL: ks_metrics_default() at ks_queue_new(),
	 * which may be NULL too (no metrics). The registry must outlive the queue. */
	struct ks_metrics *metrics;
};

/* A queue on loop. opts is copied. Never NULL; aborts if opts->work is NULL. */
struct ks_queue *ks_queue_new(uv_loop_t *loop, const struct ks_queue_opts *opts);
/*
 * Close the queue's handles; everything is freed in their close callbacks, so the
 * loop must run for that to finish. Keys waiting or delayed are dropped, the
 * drain callback does not fire, and keys still in flight are abandoned: the worker
 * must not call ks_queue_done() for them afterwards. NULL is a no-op.
 */
void ks_queue_free(struct ks_queue *q);

/* Add key (copied) at prio. Returns 0, or -ESHUTDOWN (and does nothing) after shut-down. */
int ks_queue_add(struct ks_queue *q, const char *key, enum ks_queue_prio prio);
/*
 * Add key at KS_QUEUE_HIGH after seconds (<= 0: now). If key already has a delayed
 * add pending, the earlier deadline wins. A delayed add is independent of the
 * key's immediate adds: an ks_queue_add() meanwhile does not cancel it (as in
 * client-go), so the key may be handed out once more at the deadline; dedup makes
 * that harmless, and it is what requeue_after asks for. Returns 0 or -ESHUTDOWN.
 */
int ks_queue_add_after(struct ks_queue *q, const char *key, double seconds);
/*
 * Add key after its rate-limited delay: the max of its exponential backoff
 * (which grows with each call until ks_queue_forget()) and the token bucket's.
 * Returns the delay chosen, in seconds; after shut-down, 0 and nothing is done.
 */
double ks_queue_add_rate_limited(struct ks_queue *q, const char *key);
/* Reset key's backoff (call when a reconcile succeeds). Unknown keys are ignored. */
void ks_queue_forget(struct ks_queue *q, const char *key);
/* How many rate-limited adds key has had since its last forget. */
unsigned ks_queue_num_requeues(const struct ks_queue *q, const char *key);

/* The worker is finished with key. Aborts if key is not in flight: a caller bug. */
void ks_queue_done(struct ks_queue *q, const char *key);

/*
 * Stop handing out keys and drop the waiting and delayed ones; later adds return
 * -ESHUTDOWN. When no key is in flight (now or after the last ks_queue_done()),
 * drain_cb (may be NULL) fires once, from the loop. A second call is ignored.
 */
void ks_queue_shut_down(struct ks_queue *q, ks_queue_drain_cb drain_cb, void *data);
bool ks_queue_shutting_down(const struct ks_queue *q);

/* Keys waiting to be handed out, dirty in-flight keys included (= workqueue_depth). */
size_t ks_queue_len(const struct ks_queue *q);
/* Keys handed out and not yet done. */
size_t ks_queue_in_flight(const struct ks_queue *q);
/* Keys with a delayed add pending. */
size_t ks_queue_delayed(const struct ks_queue *q);
