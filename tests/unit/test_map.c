/* test_map.c: the string-keyed hash map and its intrusive variant. */
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

/* A value that carries its key, as the cache's objects do. */
struct item {
	int n;
	char key[24];
};

static const char *item_key(const void *v)
{
	return ((const struct item *)v)->key;
}

static struct item *item_new(const char *fmt, int n)
{
	struct item *it = calloc(1, sizeof(*it));

	it->n = n;
	snprintf(it->key, sizeof(it->key), fmt, n);
	return it;
}

TEST(imap_borrows_keys_from_values)
{
	struct ks_imap *m = ks_imap_new(item_key, 0);
	struct item *a = item_new("ns/a%d", 1), *a2 = item_new("ns/a%d", 1),
		    *b = item_new("b%d", 2);

	ASSERT_EQ(ks_imap_len(m), 0);
	ASSERT(ks_imap_get(m, "ns/a1") == NULL);
	ASSERT(ks_imap_put(m, a) == NULL);
	ASSERT(ks_imap_put(m, b) == NULL);
	ASSERT(ks_imap_get(m, "ns/a1") == a);
	ASSERT(ks_imap_get(m, "b2") == b);
	/* An equal key replaces: the old value is handed back, still whole. */
	ASSERT(ks_imap_put(m, a2) == a);
	ASSERT(ks_imap_get(m, "ns/a1") == a2);
	ASSERT_EQ(ks_imap_len(m), 2);
	free(a);
	ASSERT(ks_imap_del(m, "ns/a1") == a2);
	ASSERT(ks_imap_del(m, "ns/a1") == NULL);
	ASSERT(ks_imap_get(m, "ns/a1") == NULL);
	ASSERT_EQ(ks_imap_len(m), 1);
	free(a2);
	free(ks_imap_del(m, "b2"));
	ASSERT_EQ(ks_imap_len(m), 0);
	ks_imap_free(m);
	ks_imap_free(NULL);
}

TEST(imap_many_values_grow_churn_and_walk)
{
	enum { N = 50000 };
	struct ks_imap *m = ks_imap_new(item_key, 0);
	struct item **v = calloc(N, sizeof(*v));
	char key[32], *hit = calloc(N, 1);
	size_t it = 0, seen = 0;
	void *p;

	for (int i = 0; i < N; i++) {
		v[i] = item_new("ns-%d/obj", i);
		ASSERT(ks_imap_put(m, v[i]) == NULL);
	}
	/* Churn: delete and re-add so tombstones pile up and get swept. */
	for (int round = 0; round < 4; round++) {
		for (int i = round % 2; i < N; i += 2) {
			snprintf(key, sizeof(key), "ns-%d/obj", i);
			ASSERT(ks_imap_del(m, key) == v[i]);
		}
		ASSERT_EQ(ks_imap_len(m), N / 2);
		for (int i = round % 2; i < N; i += 2)
			ASSERT(ks_imap_put(m, v[i]) == NULL);
	}
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns-%d/obj", i);
		ASSERT(ks_imap_get(m, key) == v[i]);
	}
	/* A walk sees each value once, and may delete what it was just given. */
	while (ks_imap_next(m, &it, &p)) {
		struct item *x = p;

		ASSERT(x == v[x->n]);
		ASSERT(!hit[x->n]);
		hit[x->n] = 1;
		seen++;
		if (x->n % 3 == 0)
			ASSERT(ks_imap_del(m, x->key) == x);
	}
	ASSERT_EQ(seen, N);
	ASSERT_EQ(ks_imap_len(m), N - (N + 2) / 3);
	ASSERT(!ks_imap_next(m, &it, &p));
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
	free(hit);
	ks_imap_free(m);
}

int main(void)
{
	RUN(put_get_del);
	RUN(null_values_and_key_copies);
	RUN(many_keys_grow_and_churn);
	RUN(iterate_and_delete_while_walking);
	RUN(imap_borrows_keys_from_values);
	RUN(imap_many_values_grow_churn_and_walk);
	TEST_MAIN();
}
