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
 *
 * struct ks_imap, below, is the intrusive variant for values that carry their own key
 * (the object cache's objects and index sets): it copies nothing and stores one
 * pointer per slot, so a key costs no memory beyond its value's.
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

/*
 * The intrusive map. key_of returns the key a value carries; the map borrows it, so a
 * stored value's key must stay put and unchanged until the value is deleted (delete,
 * change, put again). Values must not be NULL. The map never frees values.
 */
typedef const char *(*ks_imap_key_cb)(const void *value);

struct ks_imap;

/* A map sized for about hint values (0 for a small default). Never NULL. */
struct ks_imap *ks_imap_new(ks_imap_key_cb key_of, size_t hint);
/* Free the map, not the values. NULL is a no-op. */
void ks_imap_free(struct ks_imap *m);
/* The value whose key is key, or NULL. */
void *ks_imap_get(const struct ks_imap *m, const char *key);
/*
 * Store value under its key, replacing a value with an equal key (whose key must
 * still be readable: put the new value before freeing the old). Returns the replaced
 * value (for the caller to free) or NULL when the key was new.
 */
void *ks_imap_put(struct ks_imap *m, void *value);
/* Remove the value whose key is key. Returns it, or NULL when absent. */
void *ks_imap_del(struct ks_imap *m, const char *key);
size_t ks_imap_len(const struct ks_imap *m);
/*
 * Iterate as ks_map_next() does: *iter = 0 first. Deleting the value just returned
 * during the walk is safe; a put of a new key may rehash and upset the walk.
 */
bool ks_imap_next(const struct ks_imap *m, size_t *iter, void **value);
