/* queue.c: the controller work queue (client-go workqueue semantics on libuv). */
#include "queue.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "map.h"

#define NOT_DELAYED SIZE_MAX
/* Hand-outs per loop turn, so a worker that finishes at once cannot starve I/O. */
#define BATCH 256

/*
 * One per key the queue knows: waiting, in flight, delayed, or with a backoff to
 * remember. Freed when it is none of these.
 */
struct item {
	struct ks_list link;  /* in q->waiting[prio] or q->running */
	uint64_t added_ns;    /* when it became dirty: queue_duration starts */
	uint64_t started_ns;  /* when it was handed out: work_duration starts */
	uint64_t deadline_ns; /* of its delayed add */
	size_t heap_idx;      /* in q->heap, or NOT_DELAYED */
	unsigned failures;    /* rate-limited adds since the last forget */
	unsigned char prio;   /* the best priority asked for since it became dirty */
	bool dirty;	      /* to be handed out (again, if in flight) */
	bool in_flight;
	char key[];
};

struct ks_queue {
	uv_idle_t idle;	  /* runs while there is something to hand out or a drain to report */
	uv_timer_t timer; /* runs while q->heap is not empty */
	struct ks_queue_opts o;
	char *name;
	struct ks_map *items; /* key -> struct item * */
	struct ks_list waiting[2];
	struct ks_list running;
	size_t ndirty;
	size_t nrunning;
	struct item **heap; /* min-heap on deadline_ns */
	size_t nheap;
	size_t heap_cap;
	double tokens;
	uint64_t bucket_ns;
	struct ks_metrics *registry;
	struct ks_metrics_workqueue m;
	ks_queue_drain_cb drain_cb;
	void *drain_data;
	int open_handles;
	bool shutting_down;
	bool drain_pending;
	bool closing;
};

static void list_push(struct ks_list *l, struct item *it)
{
	ks_list_add_tail(l, &it->link);
}

static void list_unlink(struct item *it)
{
	ks_list_del(&it->link);
}

/* The first item of l, or NULL. */
static struct item *list_first(const struct ks_list *l)
{
	struct ks_list *n = ks_list_first(l);

	return n ? KS_CONTAINER_OF(n, struct item, link) : NULL;
}

static void heap_swap(struct ks_queue *q, size_t a, size_t b)
{
	struct item *t = q->heap[a];

	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_idx = a;
	q->heap[b]->heap_idx = b;
}

static void heap_up(struct ks_queue *q, size_t i)
{
	while (i > 0 && q->heap[(i - 1) / 2]->deadline_ns > q->heap[i]->deadline_ns) {
		heap_swap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct ks_queue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < q->nheap && q->heap[l]->deadline_ns < q->heap[min]->deadline_ns)
			min = l;
		if (r < q->nheap && q->heap[r]->deadline_ns < q->heap[min]->deadline_ns)
			min = r;
		if (min == i)
			return;
		heap_swap(q, i, min);
		i = min;
	}
}

static struct item *heap_pop(struct ks_queue *q)
{
	struct item *top = q->heap[0];

	heap_swap(q, 0, --q->nheap);
	heap_down(q, 0);
	top->heap_idx = NOT_DELAYED;
	return top;
}

static void maybe_free(struct ks_queue *q, struct item *it)
{
	if (it->dirty || it->in_flight || it->heap_idx != NOT_DELAYED || it->failures)
		return;
	ks_map_del(q->items, it->key);
	free(it);
}

static struct item *get_or_create(struct ks_queue *q, const char *key)
{
	struct item *it = ks_map_get(q->items, key);
	size_t n;

	if (it)
		return it;
	n = strlen(key);
	it = ks_xcalloc(1, sizeof(*it) + n + 1);
	ks_list_init(&it->link);
	memcpy(it->key, key, n + 1);
	it->heap_idx = NOT_DELAYED;
	ks_map_put(q->items, key, it);
	return it;
}

static bool want_idle(const struct ks_queue *q)
{
	if (q->closing)
		return false;
	if (q->drain_pending)
		return true;
	return !q->shutting_down && q->nrunning < q->o.concurrency &&
	       (!ks_list_empty(&q->waiting[KS_QUEUE_HIGH]) ||
		!ks_list_empty(&q->waiting[KS_QUEUE_LOW]));
}

static void on_idle(uv_idle_t *h);

static void kick(struct ks_queue *q)
{
	if (want_idle(q))
		uv_idle_start(&q->idle, on_idle);
}

static void handout(struct ks_queue *q, struct item *it)
{
	uint64_t now = ks_now_ns();

	list_unlink(it);
	it->dirty = false;
	q->ndirty--;
	it->in_flight = true;
	it->started_ns = now;
	list_push(&q->running, it);
	q->nrunning++;
	ks_metric_set(q->m.depth, (double)q->ndirty);
	ks_metric_observe(q->m.queue_duration, (double)(now - it->added_ns) / 1e9);
	/* Last: the worker may call done, add or free; it must not be touched after. */
	q->o.work(q, it->key, q->o.data);
}

static void on_idle(uv_idle_t *h)
{
	struct ks_queue *q = KS_CONTAINER_OF(h, struct ks_queue, idle);
	struct item *it;

	for (int n = 0; n < BATCH && want_idle(q) && !q->drain_pending; n++) {
		it = list_first(&q->waiting[KS_QUEUE_HIGH]);
		handout(q, it ? it : list_first(&q->waiting[KS_QUEUE_LOW]));
	}
	if (q->drain_pending && !q->closing) {
		q->drain_pending = false;
		uv_idle_stop(&q->idle);
		if (q->drain_cb)
			q->drain_cb(q, q->drain_data); /* last: it may free q */
		return;
	}
	if (!want_idle(q))
		uv_idle_stop(&q->idle);
}

static void add_item(struct ks_queue *q, struct item *it, enum ks_queue_prio prio)
{
	if (it->dirty) {
		/* Already queued: only a move up to a better priority. */
		if (prio < it->prio) {
			if (!it->in_flight) {
				list_unlink(it);
				list_push(&q->waiting[prio], it);
			}
			it->prio = (unsigned char)prio;
		}
		return;
	}
	it->dirty = true;
	it->prio = (unsigned char)prio;
	it->added_ns = ks_now_ns();
	q->ndirty++;
	ks_metric_inc(q->m.adds);
	ks_metric_set(q->m.depth, (double)q->ndirty);
	if (it->in_flight)
		return; /* handed out again after its done */
	list_push(&q->waiting[prio], it);
	kick(q);
}

int ks_queue_add(struct ks_queue *q, const char *key, enum ks_queue_prio prio)
{
	ks_require(prio == KS_QUEUE_HIGH || prio == KS_QUEUE_LOW);
	if (q->shutting_down)
		return -ESHUTDOWN;
	add_item(q, get_or_create(q, key), prio);
	return 0;
}

static void on_timer(uv_timer_t *t);

static void arm_timer(struct ks_queue *q)
{
	uint64_t now = ks_now_ns(), due;

	if (!q->nheap) {
		uv_timer_stop(&q->timer);
		return;
	}
	due = q->heap[0]->deadline_ns;
	/* Round up: a timer that fires early only re-arms itself. */
	uv_timer_start(&q->timer, on_timer, due > now ? (due - now + 999999) / 1000000 : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct ks_queue *q = KS_CONTAINER_OF(t, struct ks_queue, timer);
	uint64_t now = ks_now_ns();

	while (q->nheap && q->heap[0]->deadline_ns <= now)
		add_item(q, heap_pop(q), KS_QUEUE_HIGH);
	arm_timer(q);
}

int ks_queue_add_after(struct ks_queue *q, const char *key, double seconds)
{
	struct item *it;
	uint64_t deadline;

	if (q->shutting_down)
		return -ESHUTDOWN;
	ks_metric_inc(q->m.retries);
	it = get_or_create(q, key);
	if (!(seconds > 0)) {
		add_item(q, it, KS_QUEUE_HIGH);
		return 0;
	}
	deadline = ks_now_ns() + (uint64_t)(KS_MIN(seconds, 1e9) * 1e9);
	if (it->heap_idx == NOT_DELAYED) {
		if (q->nheap == q->heap_cap) {
			q->heap_cap = q->heap_cap ? q->heap_cap * 2 : 64;
			q->heap = ks_xrealloc(q->heap, q->heap_cap * sizeof(*q->heap));
		}
		it->heap_idx = q->nheap;
		q->heap[q->nheap++] = it;
	} else if (deadline >= it->deadline_ns) {
		return 0; /* the earlier deadline wins */
	}
	it->deadline_ns = deadline;
	heap_up(q, it->heap_idx);
	if (q->heap[0] == it)
		arm_timer(q);
	return 0;
}

/* The token bucket's delay for one more add (golang.org/x/time/rate Reserve). */
static double bucket_delay(struct ks_queue *q)
{
	uint64_t now = ks_now_ns();

	if (q->o.qps < 0)
		return 0;
	q->tokens += (double)(now - q->bucket_ns) / 1e9 * q->o.qps;
	q->tokens = KS_MIN(q->tokens, (double)q->o.burst);
	q->bucket_ns = now;
	q->tokens -= 1;
	return q->tokens < 0 ? -q->tokens / q->o.qps : 0;
}

/* base * 2^failures capped at max, jittered, never past max. */
static double backoff_delay(const struct ks_queue *q, unsigned failures)
{
	double d = ldexp(q->o.base_delay, (int)KS_MIN(failures, 4096u));

	if (!(d < q->o.max_delay))
		d = q->o.max_delay;
	if (q->o.jitter > 0)
		d *= 1 + q->o.jitter * (2 * ks_rand01() - 1);
	return KS_MIN(d, q->o.max_delay);
}

double ks_queue_add_rate_limited(struct ks_queue *q, const char *key)
{
	struct item *it;
	double d, b;

	if (q->shutting_down)
		return 0;
	it = get_or_create(q, key);
	d = backoff_delay(q, it->failures);
	if (it->failures < UINT_MAX)
		it->failures++;
	b = bucket_delay(q); /* not inside KS_MAX: it must run once */
	d = KS_MAX(d, b);
	ks_queue_add_after(q, key, d);
	return d;
}

void ks_queue_forget(struct ks_queue *q, const char *key)
{
	struct item *it = ks_map_get(q->items, key);

	if (!it)
		return;
	it->failures = 0;
	maybe_free(q, it);
}

unsigned ks_queue_num_requeues(const struct ks_queue *q, const char *key)
{
	const struct item *it = ks_map_get(q->items, key);

	return it ? it->failures : 0;
}

/* key's item, which must be in flight. (Not ks_require(): cppcheck cannot see it aborts.) */
static struct item *in_flight_item(struct ks_queue *q, const char *key)
{
	struct item *it = ks_map_get(q->items, key);

	if (it && it->in_flight)
		return it;
	ks_panic(__FILE__, __LINE__, "ks_queue_done() of a key not in flight");
}

void ks_queue_done(struct ks_queue *q, const char *key)
{
	struct item *it = in_flight_item(q, key);

	it->in_flight = false;
	list_unlink(it);
	q->nrunning--;
	ks_metric_observe(q->m.work_duration, (double)(ks_now_ns() - it->started_ns) / 1e9);
	if (it->dirty && q->shutting_down) {
		it->dirty = false;
		q->ndirty--;
		ks_metric_set(q->m.depth, (double)q->ndirty);
	} else if (it->dirty) {
		list_push(&q->waiting[it->prio], it);
	}
	if (q->shutting_down && q->nrunning == 0)
		q->drain_pending = true;
	maybe_free(q, it);
	kick(q);
}

void ks_queue_shut_down(struct ks_queue *q, ks_queue_drain_cb drain_cb, void *data)
{
	struct item *it;

	if (q->shutting_down)
		return;
	q->shutting_down = true;
	q->drain_cb = drain_cb;
	q->drain_data = data;
	for (int p = KS_QUEUE_HIGH; p <= KS_QUEUE_LOW; p++) {
		while ((it = list_first(&q->waiting[p]))) {
			list_unlink(it);
			it->dirty = false;
			q->ndirty--;
			maybe_free(q, it);
		}
	}
	while (q->nheap)
		maybe_free(q, heap_pop(q));
	uv_timer_stop(&q->timer);
	ks_metric_set(q->m.depth, (double)q->ndirty);
	q->drain_pending = q->nrunning == 0;
	kick(q);
}

bool ks_queue_shutting_down(const struct ks_queue *q)
{
	return q->shutting_down;
}

size_t ks_queue_len(const struct ks_queue *q)
{
	return q->ndirty;
}

size_t ks_queue_in_flight(const struct ks_queue *q)
{
	return q->nrunning;
}

size_t ks_queue_delayed(const struct ks_queue *q)
{
	return q->nheap;
}

/* workqueue_unfinished_work_seconds and _longest_running_processor_seconds, at scrape. */
static void collect(struct ks_metrics *m, void *data)
{
	struct ks_queue *q = data;
	uint64_t now = ks_now_ns();
	double sum = 0, longest = 0;

	struct ks_list *l, *nx;

	ks_list_foreach_safe(l, nx, &q->running) {
		struct item *it = KS_CONTAINER_OF(l, struct item, link);
		double s = (double)(now - it->started_ns) / 1e9;

		sum += s;
		longest = KS_MAX(longest, s);
	}
	ks_metric_set(q->m.unfinished_work, sum);
	ks_metric_set(q->m.longest_running, longest);
}

struct ks_queue *ks_queue_new(uv_loop_t *loop, const struct ks_queue_opts *opts)
{
	struct ks_queue *q = ks_xcalloc(1, sizeof(*q));
	struct ks_queue_opts *o = &q->o;

	ks_require(opts->work != NULL);
	*o = *opts;
	q->name = ks_xstrdup(opts->name ? opts->name : "");
	o->name = q->name;
	o->concurrency = o->concurrency ? o->concurrency : 1;
	o->base_delay = o->base_delay > 0 ? o->base_delay : 0.005;
	o->max_delay = o->max_delay > 0 ? o->max_delay : 1000;
	o->jitter = o->jitter != 0 ? o->jitter : 0.1;
	o->qps = o->qps != 0 ? o->qps : 10;
	o->burst = o->burst ? o->burst : 100;
	q->tokens = o->burst;
	q->bucket_ns = ks_now_ns();
	q->items = ks_map_new(0);
	ks_list_init(&q->waiting[0]);
	ks_list_init(&q->waiting[1]);
	ks_list_init(&q->running);
	q->registry = o->metrics ? o->metrics : ks_metrics_default();
	ks_metrics_workqueue_init(q->registry, q->name, &q->m);
	if (q->registry)
		ks_metrics_add_collector(q->registry, collect, q);
	ks_require(uv_idle_init(loop, &q->idle) == 0);
	ks_require(uv_timer_init(loop, &q->timer) == 0);
	q->open_handles = 2;
	return q;
}

static void on_closed(uv_handle_t *h)
{
	struct ks_queue *q = h->data;
	size_t iter = 0;
	void *it;

	if (--q->open_handles > 0)
		return;
	while (ks_map_next(q->items, &iter, NULL, &it))
		free(it);
	ks_map_free(q->items);
	free(q->heap);
	free(q->name);
	free(q);
}

void ks_queue_free(struct ks_queue *q)
{
	if (!q)
		return;
	ks_require(!q->closing);
	q->closing = true;
	if (q->registry) {
		ks_metrics_remove_collector(q->registry, collect, q);
		ks_metric_set(q->m.depth, 0);
		ks_metric_set(q->m.unfinished_work, 0);
		ks_metric_set(q->m.longest_running, 0);
	}
	q->idle.data = q;
	q->timer.data = q;
	uv_close((uv_handle_t *)&q->idle, on_closed);
	uv_close((uv_handle_t *)&q->timer, on_closed);
}
