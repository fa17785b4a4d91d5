/* test_map.c: the string-keyed hash map. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "map.h"
#include "test.h"

TEST(put_get_del)
{
	struct ks_map *m = ks_map_new(0);
	int a = 1, b = 2;

	ASSERT_EQ(ks_map_len(m), 0);
	ASSERT(ks_map_get(m, "x") == NULL);
	ASSERT(!ks_map_has(m, "x"));
	ASSERT(ks_map_put(m, "x", &a) == NULL);
	ASSERT(ks_map_get(m, "x") == &a);
	ASSERT(ks_map_put(m, "x", &b) == &a);
	ASSERT(ks_map_get(m, "x") == &b);
	ASSERT_EQ(ks_map_len(m), 1);
	ASSERT(ks_map_put(m, "", &a) == NULL);
	ASSERT(ks_map_get(m, "") == &a);
	ASSERT(ks_map_del(m, "x") == &b);
	ASSERT(ks_map_del(m, "x") == NULL);
	ASSERT(!ks_map_has(m, "x"));
	ASSERT_EQ(ks_map_len(m), 1);
	ks_map_free(m);
}

TEST(null_values_and_key_copies)
{
	struct ks_map *m = ks_map_new(4);
	char key[] = "ns/name";

	ASSERT(ks_map_put(m, key, NULL) == NULL);
	key[0] = 'X';
	ASSERT(ks_map_has(m, "ns/name"));
	ASSERT(!ks_map_has(m, key));
	ASSERT(ks_map_get(m, "ns/name") == NULL);
	ks_map_free(m);
	ks_map_free(NULL);
}

TEST(many_keys_grow_and_churn)
{
	enum { N = 100000 };
	struct ks_map *m = ks_map_new(0);
	char key[32];

	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns-%lu/obj", (unsigned long)i);
		ASSERT(ks_map_put(m, key, (void *)(i + 1)) == NULL);
	}
	ASSERT_EQ(ks_map_len(m), N);
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns-%lu/obj", (unsigned long)i);
		ASSERT(ks_map_get(m, key) == (void *)(i + 1));
	}
	/* Churn: delete and re-add so tombstones pile up and get swept. */
	for (int round = 0; round < 5; round++) {
		for (uintptr_t i = 0; i < N; i += 2) {
			snprintf(key, sizeof(key), "ns-%lu/obj", (unsigned long)i);
			ASSERT(ks_map_del(m, key) == (void *)(i + 1));
		}
		ASSERT_EQ(ks_map_len(m), N / 2);
		for (uintptr_t i = 0; i < N; i += 2) {
			snprintf(key, sizeof(key), "ns-%lu/obj", (unsigned long)i);
			ASSERT(ks_map_put(m, key, (void *)(i + 1)) == NULL);
		}
	}
	ASSERT_EQ(ks_map_len(m), N);
	snprintf(key, sizeof(key), "ns-%d/obj", N - 1);
	ASSERT(ks_map_get(m, key) == (void *)(uintptr_t)N);
	ks_map_free(m);
}

TEST(iterate_and_delete_while_walking)
{
	enum { N = 1000 };
	struct ks_map *m = ks_map_new(0);
	char key[32];
	const char *k;
	void *v;
	size_t it = 0, seen = 0;
	unsigned long sum = 0;
	char *hit = calloc(N, 1);

	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		ks_map_put(m, key, (void *)i);
	}
	while (ks_map_next(m, &it, &k, &v)) {
		uintptr_t i = (uintptr_t)v;

		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		ASSERT_STR(k, key);
		ASSERT(!hit[i]);
		hit[i] = 1;
		seen++;
		sum += i;
		if (i % 3 == 0)
			ASSERT(ks_map_del(m, k) == v);
	}
	ASSERT_EQ(seen, N);
	ASSERT_EQ(sum, (unsigned long)N * (N - 1) / 2);
	ASSERT_EQ(ks_map_len(m), N - (N + 2) / 3);
	it = 0;
	seen = 0;
	while (ks_map_next(m, &it, NULL, &v)) {
		ASSERT((uintptr_t)v % 3 != 0);
		seen++;
	}
	ASSERT_EQ(seen, ks_map_len(m));
	ASSERT(!ks_map_next(m, &it, NULL, NULL));
	free(hit);
	ks_map_free(m);
}

int main(void)
{
	RUN(put_get_del);
	RUN(null_values_and_key_copies);
	RUN(many_keys_grow_and_churn);
	RUN(iterate_and_delete_while_walking);
	TEST_MAIN();
}
