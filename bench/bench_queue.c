/*
 * bench_queue.c: work queue throughput and memory for 100k keys. Prints figures,
 * judges nothing. Keys look like real ones: "namespace-NN/instance-NNNNNN".
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "queue.h"

enum { N = 100000 };

static char (*keys)[40];
static long handed;

static void work(struct ks_queue *q, const char *key, void *data)
{
	handed++;
	ks_queue_done(q, key);
}

static double since(uint64_t t0)
{
	return (double)(ks_now_ns() - t0) / 1e9;
}

static void figure(const char *what, double n, double secs)
{
	printf("%-44s %12.0f /s  (%.1f ms for %.0f)\n", what, n / secs, secs * 1e3, n);
}

static struct ks_queue *queue(uv_loop_t *loop, struct ks_metrics *m, unsigned concurrency)
{
	struct ks_queue_opts o = {
		.name = "bench", .concurrency = concurrency, .work = work, .metrics = m, .qps = -1
	};

	return ks_queue_new(loop, &o);
}

static void close_queue(uv_loop_t *loop, struct ks_queue *q)
{
	ks_queue_free(q);
	uv_run(loop, UV_RUN_DEFAULT);
}

static void memory(uv_loop_t *loop)
{
	struct mallinfo2 before, after;
	struct ks_queue *q;

	before = mallinfo2();
	q = queue(loop, NULL, 1);
	for (int i = 0; i < N; i++)
		ks_queue_add(q, keys[i], KS_QUEUE_LOW);
	after = mallinfo2();
	printf("%-44s %12.0f B   (keys of ~27 chars, heap in use)\n", "memory per queued key",
	       (double)(after.uordblks - before.uordblks) / N);
	close_queue(loop, q);
}

static void throughput(uv_loop_t *loop, struct ks_metrics *m, unsigned concurrency)
{
	struct ks_queue *q = queue(loop, m, concurrency);
	char what[64];
	uint64_t t0 = ks_now_ns();

	for (int i = 0; i < N; i++)
		ks_queue_add(q, keys[i], i % 2 ? KS_QUEUE_LOW : KS_QUEUE_HIGH);
	snprintf(what, sizeof(what), "adds, new keys%s", m ? " (metrics on)" : "");
	figure(what, N, since(t0));
	t0 = ks_now_ns();
	for (int i = 0; i < N; i++)
		ks_queue_add(q, keys[i], KS_QUEUE_HIGH);
	figure("adds, keys already waiting (dedup/promote)", N, since(t0));
	handed = 0;
	t0 = ks_now_ns();
	uv_run(loop, UV_RUN_DEFAULT);
	snprintf(what, sizeof(what), "hand-out + done, concurrency %u", concurrency);
	figure(what, (double)handed, since(t0));
	close_queue(loop, q);
}

static void delayed(uv_loop_t *loop)
{
	struct ks_queue *q = queue(loop, NULL, 64);
	uint64_t t0 = ks_now_ns();

	for (int i = 0; i < N; i++)
		ks_queue_add_after(q, keys[i], 0.001 + (double)(i % 997) / 1e5);
	figure("add_after (heap push), distinct keys", N, since(t0));
	t0 = ks_now_ns();
	for (int i = 0; i < N; i++)
		ks_queue_add_rate_limited(q, keys[i]);
	figure("add_rate_limited, keys already delayed", N, since(t0));
	handed = 0;
	t0 = ks_now_ns();
	uv_run(loop, UV_RUN_DEFAULT);
	figure("delayed keys fired + handed out + done", (double)handed, since(t0));
	close_queue(loop, q);
}

int main(void)
{
	uv_loop_t loop;
	struct ks_metrics *m = ks_metrics_new();

	keys = calloc(N, sizeof(*keys));
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof(keys[i]), "namespace-%02d/instance-%06d", i % 97, i);
	uv_loop_init(&loop);
	printf("bench_queue: %d keys\n", N);
	memory(&loop);
	throughput(&loop, NULL, 1);
	throughput(&loop, NULL, 64);
	throughput(&loop, m, 64);
	delayed(&loop);
	uv_loop_close(&loop);
	ks_metrics_free(m);
	free(keys);
	return 0;
}
