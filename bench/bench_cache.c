/*
 * bench_cache.c: memory of the object cache for 10,000 custom resources shaped like
 * what the API server sends (labels, an owner, managedFields), against the stripped
 * JSON they hold (before and after the label index, built on first use, exists); and
 * the CPU time to add, to update and to relist them. Offline: the objects are made
 * here, so the figure is the cache's own, not the network's.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cache.h"
#include "json.h"
#include "ks.h"

#define N 10000

static cJSON *make(int i, int rv)
{
	char *t = ks_xasprintf(
		"{\"apiVersion\":\"test.kupenstack.io/v1\",\"kind\":\"Widget\",\"metadata\":{"
		"\"name\":\"widget-%05d\",\"namespace\":\"bench-%d\",\"uid\":"
		"\"6f1c2a3e-0000-4000-8000-%012d\",\"resourceVersion\":\"%d\",\"generation\":1,"
		"\"creationTimestamp\":\"2026-11-24T12:00:00Z\",\"labels\":{\"app\":\"bench\","
		"\"tier\":\"t%d\"},\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":"
		"\"ConfigMap\",\"name\":\"owner\",\"uid\":\"owner-%d\"}],\"managedFields\":[{"
		"\"manager\":\"kubectl-client-side-apply\",\"operation\":\"Update\",\"apiVersion\":"
		"\"test.kupenstack.io/v1\",\"time\":\"2026-11-24T12:00:00Z\",\"fieldsType\":"
		"\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\".\":{},\"f:size\":{},\"f:color\":{}}}}]},"
		"\"spec\":{\"size\":%d,\"color\":\"blue\"},\"status\":{\"phase\":\"Ready\","
		"\"observedGeneration\":1}}",
		i, i % 10, i, rv, i % 4, i % 100, i);
	cJSON *j = cJSON_Parse(t);

	free(t);
	return j;
}

/* This thread's CPU time: other load on the machine (tests, builds) does not count. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t heap(void)
{
	return mallinfo2().uordblks; /* chunk sizes: what malloc really spends, headers too */
}

static void row_heap(const char *what, size_t bytes, size_t json)
{
	printf("%-44s %10zu B  %4.0f B/object  %.2f x JSON\n", what, bytes, (double)bytes / N,
	       (double)bytes / (double)json);
}

/* Upsert every item; the CPU time per object in microseconds. */
static double upsert_all(struct ks_cache *c, cJSON *items)
{
	uint64_t t0 = cpu_ns();

	for (cJSON *it = items->child; it; it = it->next)
		ks_cache_upsert(c, it);
	return (double)(cpu_ns() - t0) / 1e3 / N;
}

static cJSON *make_all(int rv0)
{
	cJSON *items = cJSON_CreateArray();

	for (int i = 0; i < N; i++) {
		cJSON *o = make(i, rv0 + i);

		ks_json_strip_object(o); /* so the cache's own stripping frees nothing here */
		cJSON_AddItemToArray(items, o);
	}
	return items;
}

int main(void)
{
	cJSON *items = make_all(1000), *updates = make_all(100000);
	const struct ks_cache_obj *const *v;
	size_t h0, h1, h2, json;
	double add_us, upd_us;
	struct ks_cache *c;
	uint64_t t0;

	h0 = heap();
	c = ks_cache_new();
	add_us = upsert_all(c, items);
	h1 = heap();
	json = ks_cache_json_bytes(c);
	ks_cache_by_label(c, "app", "bench", &v);
	h2 = heap();
	printf("bench_cache: %d objects, 2 labels and 1 owner each\n", N);
	printf("%-44s %10zu B  %4.0f B/object\n", "stripped JSON held", json, (double)json / N);
	row_heap("heap used by the cache (aim <= 1.3 x)", h1 - h0, json);
	row_heap("  and once the label index is asked for", h2 - h0, json);
	printf("%-44s %10.1f us\n", "add per object (strip, print, index)", add_us);
	upd_us = upsert_all(c, updates);
	printf("%-44s %10.1f us\n", "update per object (the same, and unindex)", upd_us);
	t0 = cpu_ns();
	ks_cache_replace(c, updates);
	printf("%-44s %10.1f ms\n", "relist of the same 10,000 (no change)",
	       (double)(cpu_ns() - t0) / 1e6);
	ks_cache_free(c);
	cJSON_Delete(items);
	cJSON_Delete(updates);
	return 0;
}
