#pragma once
/*
 * map.h: a string-keyed hash map from keys to void * values, for any unit that
 * needs one (the work queue's key state, the metrics registry's children, the
 * object cache). Open addressing with linear probing and tombstones; the map
 * copies each key on insertion and frees its copies, but never touches the
 * values: the caller owns them and frees them (ks_map_next() walks them).
 *
 * Every operation is O(1) expected. Allocation aborts on out-of-memory (ks.h),
 * so nothing here fails. Not thread-safe: the host is single-threaded.
 */
#include <stdbool.h>
#include <stddef.h>

struct ks_map;

/* A map sized for about hint keys (0 for a small default). Never NULL. */
struct ks_map *ks_map_new(size_t hint);
/* Free the map and its key copies, not the values. NULL is a no-op. */
void ks_map_free(struct ks_map *m);

/*
 * The value stored under key, or NULL when key is absent. A NULL value may be
 * stored; ks_map_has() tells it from absence.
 */
void *ks_map_get(const struct ks_map *m, const char *key);
bool ks_map_has(const struct ks_map *m, const char *key);

/*
 * Store value under key (copied), replacing any previous value. Returns the
 * previous value (for the caller to free) or NULL when key was new.
 */
void *ks_map_put(struct ks_map *m, const char *key, void *value);

/*
 * Remove key. Returns its value (for the caller to free) or NULL when key was
 * absent.
 */
void *ks_map_del(struct ks_map *m, const char *key);

/* The number of keys stored. */
size_t ks_map_len(const struct ks_map *m);

/*
 * Iterate: set *iter = 0, then call until it returns false. Each true return
 * sets *key (the map's copy, valid until that key is deleted) and *value; either
 * out pointer may be NULL. The order is unspecified. Deleting the key just
 * returned (or any other) during the walk is safe; a ks_map_put() of a new key
 * during the walk may rehash and make the walk miss or repeat keys.
 */
bool ks_map_next(const struct ks_map *m, size_t *iter, const char **key, void **value);
