/* test_queue.c: the controller work queue, driven by a real libuv loop. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "map.h"
#include "metrics.h"
#include "queue.h"
#include "test.h"

#define MAXLOG 256

/* One test's world: a loop, a queue, and what its worker saw. */
static struct {
	uv_loop_t loop;
	struct ks_queue *q;
	struct ks_map *flying; /* keys handed out and not done */
	char log[MAXLOG][32];  /* hand-out order */
	int handed;
	int max_in_flight;
	bool hold; /* the worker keeps keys instead of calling done */
	char held[MAXLOG][32];
	int nheld;
	bool in_call;	   /* the test is inside a ks_queue_* call */
	bool reentered;	   /* the worker ran from inside one */
	bool double_given; /* a key was handed out while in flight */
	bool free_in_worker;
	int drained;
	void (*hook)(const char *key);
} H;

#define CALL(expr)                 \
	do {                       \
		H.in_call = true;  \
		expr;              \
		H.in_call = false; \
	} while (0)

static void finish(const char *key)
{
	ks_map_del(H.flying, key);
	CALL(ks_queue_done(H.q, key));
}

static void work(struct ks_queue *q, const char *key, void *data)
{
	H.reentered |= H.in_call;
	H.double_given |= ks_map_has(H.flying, key);
	ks_map_put(H.flying, key, NULL);
	H.max_in_flight = KS_MAX(H.max_in_flight, (int)ks_queue_in_flight(q));
	if (H.handed < MAXLOG)
		snprintf(H.log[H.handed], sizeof(H.log[0]), "%s", key);
	H.handed++;
	if (H.free_in_worker) {
		ks_queue_free(q);
		H.q = NULL;
		return;
	}
	if (H.hook)
		H.hook(key);
	if (H.hold && H.nheld < MAXLOG)
		snprintf(H.held[H.nheld++], sizeof(H.held[0]), "%s", key);
	else if (!H.hold)
		finish(key);
}

static void setup(struct ks_queue_opts *o)
{
	memset(&H, 0, sizeof(H));
	uv_loop_init(&H.loop);
	H.flying = ks_map_new(0);
	o->work = work;
	H.q = ks_queue_new(&H.loop, o);
}

static void release_all(void)
{
	int n = H.nheld;

	H.nheld = 0;
	for (int i = 0; i < n; i++)
		finish(H.held[i]);
}

/* Free the queue, let its handles close, and check the loop is left empty. */
static int teardown(void)
{
	ks_queue_free(H.q);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ks_map_free(H.flying);
	return uv_loop_close(&H.loop);
}

static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	return NAN;
}

TEST(dedup_while_waiting)
{
	struct ks_queue_opts o = { .name = "t" };

	setup(&o);
	CALL(ks_queue_add(H.q, "ns/a", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "ns/a", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "ns/b", KS_QUEUE_LOW));
	CALL(ks_queue_add(H.q, "ns/a", KS_QUEUE_LOW));
	ASSERT_EQ(ks_queue_len(H.q), 2);
	ASSERT_EQ(H.handed, 0); /* nothing runs inside add */
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 2);
	ASSERT_STR(H.log[0], "ns/a");
	ASSERT_STR(H.log[1], "ns/b");
	ASSERT_EQ(ks_queue_len(H.q), 0);
	ASSERT(!H.reentered);
	ASSERT_EQ(teardown(), 0);
}

static void readd_twice(const char *key)
{
	if (strcmp(key, "a") == 0 && H.handed == 1) {
		CALL(ks_queue_add(H.q, "a", KS_QUEUE_LOW));
		CALL(ks_queue_add(H.q, "a", KS_QUEUE_HIGH));
		CALL(ks_queue_add(H.q, "b", KS_QUEUE_HIGH));
	}
}

static void release_tick(uv_timer_t *t)
{
	release_all();
	if (!ks_queue_len(H.q) && !ks_queue_in_flight(H.q) && !ks_queue_delayed(H.q))
		uv_timer_stop(t);
}

TEST(in_flight_key_is_never_handed_out_twice)
{
	struct ks_queue_opts o = { .name = "t", .concurrency = 4 };
	uv_timer_t t;

	setup(&o);
	H.hold = true;
	H.hook = readd_twice;
	uv_timer_init(&H.loop, &t);
	uv_timer_start(&t, release_tick, 5, 5);
	CALL(ks_queue_add(H.q, "a", KS_QUEUE_HIGH));
	uv_run(&H.loop, UV_RUN_DEFAULT);
	/* a, then b (free capacity) while a is in flight, then a again after its done. */
	ASSERT_EQ(H.handed, 3);
	ASSERT_STR(H.log[0], "a");
	ASSERT_STR(H.log[1], "b");
	ASSERT_STR(H.log[2], "a");
	ASSERT(!H.double_given);
	ASSERT(!H.reentered);
	uv_close((uv_handle_t *)&t, NULL);
	ASSERT_EQ(teardown(), 0);
}

TEST(concurrency_cap)
{
	struct ks_queue_opts o = { .name = "t", .concurrency = 3 };
	char key[16];
	uv_timer_t t;

	setup(&o);
	H.hold = true;
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CALL(ks_queue_add(H.q, key, KS_QUEUE_HIGH));
	}
	uv_timer_init(&H.loop, &t);
	uv_timer_start(&t, release_tick, 2, 2);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 20);
	ASSERT_EQ(H.max_in_flight, 3);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_STR(H.log[i], key);
	}
	uv_close((uv_handle_t *)&t, NULL);
	ASSERT_EQ(teardown(), 0);
}

TEST(high_before_low_and_promotion)
{
	struct ks_queue_opts o = { .name = "t" };
	const char *want[] = { "h1", "h2", "l2", "l1", "l3" };

	setup(&o);
	CALL(ks_queue_add(H.q, "l1", KS_QUEUE_LOW));
	CALL(ks_queue_add(H.q, "l2", KS_QUEUE_LOW));
	CALL(ks_queue_add(H.q, "h1", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "l3", KS_QUEUE_LOW));
	CALL(ks_queue_add(H.q, "h2", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "l2", KS_QUEUE_HIGH)); /* moves up */
	CALL(ks_queue_add(H.q, "h1", KS_QUEUE_LOW));  /* never moves down */
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 5);
	for (int i = 0; i < 5; i++)
		ASSERT_STR(H.log[i], want[i]);
	ASSERT_EQ(teardown(), 0);
}

TEST(add_after_orders_by_deadline_and_fires)
{
	struct ks_queue_opts o = { .name = "t" };

	setup(&o);
	CALL(ks_queue_add_after(H.q, "c", 0.030));
	CALL(ks_queue_add_after(H.q, "a", 0.010));
	CALL(ks_queue_add_after(H.q, "b", 0.020));
	CALL(ks_queue_add_after(H.q, "a", 0.050)); /* later: ignored */
	CALL(ks_queue_add_after(H.q, "b", 0.002)); /* earlier: wins */
	CALL(ks_queue_add_after(H.q, "now", 0));
	ASSERT_EQ(ks_queue_delayed(H.q), 3);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 4);
	ASSERT_STR(H.log[0], "now");
	ASSERT_STR(H.log[1], "b");
	ASSERT_STR(H.log[2], "a");
	ASSERT_STR(H.log[3], "c");
	ASSERT_EQ(ks_queue_delayed(H.q), 0);
	/* An immediate add does not cancel a pending delayed add (client-go keeps both). */
	CALL(ks_queue_add_after(H.q, "x", 0.005));
	CALL(ks_queue_add(H.q, "x", KS_QUEUE_LOW));
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 6);
	ASSERT_STR(H.log[4], "x");
	ASSERT_STR(H.log[5], "x");
	ASSERT_EQ(teardown(), 0);
}

TEST(backoff_doubles_caps_and_forget_resets)
{
	struct ks_queue_opts o = { .name = "t", .qps = -1 };
	double d, want;

	setup(&o);
	for (int i = 0; i < 30; i++) {
		want = KS_MIN(0.005 * pow(2, i), 1000);
		CALL(d = ks_queue_add_rate_limited(H.q, "k"));
		if (d < 0.9 * want - 1e-12 || d > KS_MIN(1.1 * want, 1000) + 1e-12)
			FAIL_("retry %d: delay %g not within 10%% of %g", i, d, want);
	}
	ASSERT_EQ(ks_queue_num_requeues(H.q, "k"), 30);
	ASSERT_EQ(ks_queue_delayed(H.q), 1);
	CALL(ks_queue_forget(H.q, "k"));
	ASSERT_EQ(ks_queue_num_requeues(H.q, "k"), 0);
	CALL(d = ks_queue_add_rate_limited(H.q, "k"));
	ASSERT(d >= 0.0045 && d <= 0.0055);
	ASSERT_EQ(ks_queue_num_requeues(H.q, "k"), 1);
	ASSERT_EQ(ks_queue_num_requeues(H.q, "unknown"), 0);
	/* The earlier (5 ms) deadline replaced the 1000 s one: it fires. */
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 1);
	ASSERT_EQ(teardown(), 0);
}

TEST(backoff_exact_without_jitter_and_jitter_varies)
{
	struct ks_queue_opts o = { .name = "t", .qps = -1, .jitter = -1 };
	double d[4], first = 0;
	bool varied = false;
	char key[16];

	setup(&o);
	for (int i = 0; i < 4; i++)
		CALL(d[i] = ks_queue_add_rate_limited(H.q, "k"));
	ASSERT(d[0] == 0.005 && d[1] == 0.01 && d[2] == 0.02 && d[3] == 0.04);
	ASSERT_EQ(teardown(), 0);

	o.jitter = 0;
	setup(&o);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CALL(d[0] = ks_queue_add_rate_limited(H.q, key));
		if (i == 0)
			first = d[0];
		varied |= d[0] != first;
	}
	ASSERT(varied);
	ASSERT_EQ(teardown(), 0);
}

TEST(bucket_limiter_past_burst)
{
	struct ks_queue_opts o = { .name = "t", .jitter = -1 };
	char key[16];
	double d[103];

	setup(&o);
	for (int i = 0; i < 103; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CALL(d[i] = ks_queue_add_rate_limited(H.q, key));
	}
	for (int i = 0; i < 100; i++)
		ASSERT(d[i] == 0.005);
	/* 10 qps: the 101st waits ~0.1 s for a token, the 102nd ~0.2 s, ... (less what
	 * refilled while the test ran: bounds loose enough for a loaded machine). */
	ASSERT(d[100] > 0.05 && d[100] <= 0.1);
	ASSERT(d[101] > 0.15 && d[101] <= 0.2);
	ASSERT(d[102] > 0.25 && d[102] <= 0.3);
	ASSERT(d[102] - d[101] > 0.09 && d[102] - d[101] <= 0.1 + 1e-9);
	ASSERT_EQ(teardown(), 0);
}

static void on_drain(struct ks_queue *q, void *data)
{
	H.reentered |= H.in_call;
	H.drained++;
	ASSERT_EQ(ks_queue_in_flight(q), 0);
	ks_queue_free(q);
	H.q = NULL;
}

static void shut_down_tick(uv_timer_t *t)
{
	ASSERT_EQ(ks_queue_in_flight(H.q), 2);
	CALL(ks_queue_shut_down(H.q, on_drain, NULL));
	CALL(ks_queue_shut_down(H.q, on_drain, NULL));
	ASSERT(ks_queue_shutting_down(H.q));
	ASSERT_EQ(ks_queue_add(H.q, "late", KS_QUEUE_HIGH), -ESHUTDOWN);
	ASSERT_EQ(ks_queue_add_after(H.q, "late", 1), -ESHUTDOWN);
	ASSERT(ks_queue_add_rate_limited(H.q, "late") == 0);
	/* Dirty in-flight keys are dropped too. */
	ks_queue_add(H.q, "k0", KS_QUEUE_HIGH);
	release_all();
	ASSERT_EQ(H.drained, 0); /* from the loop, not from inside done */
	uv_close((uv_handle_t *)t, NULL);
}

TEST(shut_down_drains_then_calls_back_once)
{
	struct ks_queue_opts o = { .name = "t", .concurrency = 2 };
	char key[16];
	uv_timer_t t;

	setup(&o);
	H.hold = true;
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CALL(ks_queue_add(H.q, key, KS_QUEUE_HIGH));
	}
	CALL(ks_queue_add_after(H.q, "later", 0.001));
	uv_timer_init(&H.loop, &t);
	uv_timer_start(&t, shut_down_tick, 10, 0);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 2);
	ASSERT_EQ(H.drained, 1);
	ASSERT(!H.reentered);
	ASSERT(H.q == NULL);
	ks_map_free(H.flying);
	ASSERT_EQ(uv_loop_close(&H.loop), 0);

	/* Nothing in flight: the callback still comes, from the loop. */
	setup(&o);
	CALL(ks_queue_shut_down(H.q, on_drain, NULL));
	ASSERT_EQ(H.drained, 0);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.drained, 1);
	ks_map_free(H.flying);
	ASSERT_EQ(uv_loop_close(&H.loop), 0);
}

static char *scrape;

static void scrape_tick(uv_timer_t *t)
{
	struct ks_buf b;

	ks_buf_init(&b);
	ks_metrics_render(t->data, &b);
	scrape = ks_buf_steal(&b);
	release_all();
	uv_close((uv_handle_t *)t, NULL);
}

TEST(metrics_match_what_happened)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_queue_opts o = { .name = "instance", .metrics = m, .qps = -1 };
	uv_timer_t t;

	setup(&o);
	CALL(ks_queue_add(H.q, "a", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "a", KS_QUEUE_HIGH)); /* deduped: not an add */
	CALL(ks_queue_add(H.q, "b", KS_QUEUE_LOW));
	CALL(ks_queue_add_after(H.q, "c", 0.001));
	CALL(ks_queue_add_rate_limited(H.q, "d"));
	ASSERT_EQ(ks_metric_value(ks_metric_child(ks_metrics_find(m, "workqueue_depth"),
						  KS_LABELS("instance"))),
		  2);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 4);
	/* Hold one key 20 ms and scrape meanwhile: unfinished work shows. */
	H.hold = true;
	CALL(ks_queue_add(H.q, "slow", KS_QUEUE_HIGH));
	uv_timer_init(&H.loop, &t);
	t.data = m;
	uv_update_time(&H.loop);
	uv_timer_start(&t, scrape_tick, 20, 0);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT(scrape);
	ASSERT_EQ(sample(scrape, "workqueue_adds_total{name=\"instance\"}"), 5);
	ASSERT_EQ(sample(scrape, "workqueue_retries_total{name=\"instance\"}"), 2);
	ASSERT_EQ(sample(scrape, "workqueue_depth{name=\"instance\"}"), 0);
	ASSERT_EQ(sample(scrape, "workqueue_queue_duration_seconds_count{name=\"instance\"}"), 5);
	ASSERT_EQ(sample(scrape, "workqueue_work_duration_seconds_count{name=\"instance\"}"), 4);
	ASSERT(sample(scrape, "workqueue_unfinished_work_seconds{name=\"instance\"}") >= 0.015);
	ASSERT(sample(scrape, "workqueue_longest_running_processor_seconds{name=\"instance\"}") >=
	       0.015);
	ASSERT(sample(scrape, "workqueue_work_duration_seconds_bucket{name=\"instance\","
			      "le=\"+Inf\"}") == 4);
	free(scrape);
	scrape = NULL;
	ASSERT_EQ(teardown(), 0);
	ks_metrics_free(m);
}

TEST(worker_may_free_the_queue)
{
	struct ks_queue_opts o = { .name = "t", .concurrency = 4 };

	setup(&o);
	H.free_in_worker = true;
	CALL(ks_queue_add(H.q, "a", KS_QUEUE_HIGH));
	CALL(ks_queue_add(H.q, "b", KS_QUEUE_HIGH));
	CALL(ks_queue_add_after(H.q, "c", 10));
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, 1);
	ks_map_free(H.flying);
	ASSERT_EQ(uv_loop_close(&H.loop), 0);
}

TEST(hundred_thousand_keys)
{
	enum { N = 100000 };
	struct ks_queue_opts o = { .name = "t", .concurrency = 8 };
	char key[32];

	setup(&o);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			snprintf(key, sizeof(key), "ns-%d/obj-%d", i % 50, i);
			CALL(ks_queue_add(H.q, key, i % 2 ? KS_QUEUE_LOW : KS_QUEUE_HIGH));
		}
	}
	ASSERT_EQ(ks_queue_len(H.q), N);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	ASSERT_EQ(H.handed, N);
	ASSERT_STR(H.log[0], "ns-0/obj-0");
	ASSERT_STR(H.log[1], "ns-2/obj-2"); /* highs first */
	ASSERT_EQ(ks_queue_len(H.q), 0);
	ASSERT(!H.double_given && !H.reentered);
	ASSERT_EQ(teardown(), 0);
}

int main(void)
{
	alarm(120);
	RUN(dedup_while_waiting);
	RUN(in_flight_key_is_never_handed_out_twice);
	RUN(concurrency_cap);
	RUN(high_before_low_and_promotion);
	RUN(add_after_orders_by_deadline_and_fires);
	RUN(backoff_doubles_caps_and_forget_resets);
	RUN(backoff_exact_without_jitter_and_jitter_varies);
	RUN(bucket_limiter_past_burst);
	RUN(shut_down_drains_then_calls_back_once);
	RUN(metrics_match_what_happened);
	RUN(worker_may_free_the_queue);
	RUN(hundred_thousand_keys);
	TEST_MAIN();
}
