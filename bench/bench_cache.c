/*
 * bench_cache.c: memory of the object cache for 10,000 custom resources shaped like
 * what the API server sends (labels, an owner, managedFields), against the stripped
 * JSON they hold; and the time to insert and to relist them. Offline: the objects
 * are made here, so the figure is the cache's own, not the network's.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

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

static size_t heap(void)
{
	return mallinfo2().uordblks;
}

int main(void)
{
	size_t h0, h1;
	uint64_t t0, t1, t2;
	struct ks_cache *c;
	cJSON *items = cJSON_CreateArray();

	for (int i = 0; i < N; i++) {
		cJSON *o = make(i, 1000 + i);

		ks_json_strip_object(o); /* so the cache's own stripping frees nothing here */
		cJSON_AddItemToArray(items, o);
	}
	h0 = heap();
	t0 = ks_now_ns();
	c = ks_cache_new();
	for (cJSON *it = items->child; it; it = it->next)
		ks_cache_upsert(c, it);
	t1 = ks_now_ns();
	h1 = heap();
	printf("bench_cache: %d objects\n", N);
	printf("%-44s %10zu B\n", "stripped JSON held", ks_cache_json_bytes(c));
	printf("%-44s %10zu B\n", "heap used by the cache", h1 - h0);
	printf("%-44s %10.0f B\n", "per object (heap)", (double)(h1 - h0) / N);
	printf("%-44s %10.2f x   (aim <= 1.3)\n", "heap / stripped JSON",
	       (double)(h1 - h0) / (double)ks_cache_json_bytes(c));
	printf("%-44s %10.1f us\n", "upsert per object (strip, print, index)",
	       (double)(t1 - t0) / 1e3 / N);
	t1 = ks_now_ns();
	ks_cache_replace(c, items);
	t2 = ks_now_ns();
	printf("%-44s %10.1f ms\n", "relist of the same 10,000 (no change)",
	       (double)(t2 - t1) / 1e6);
	ks_cache_free(c);
	cJSON_Delete(items);
	return 0;
}
