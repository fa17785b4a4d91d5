#pragma once
/*
 * cache_index.h: the object cache's secondary indexes, for cache.c alone: each index
 * value ("n:<namespace>", "l:<key>=<value>", "o:<owner uid>", "i:<status.id>") maps to the set of
 * cached objects filed under it. The objects are cache.c's; this unit holds only
 * pointers to them and never frees them.
 *
 * An object is not told which sets hold it: when it leaves, its values are read back
 * from its JSON text. Labels are filed only once ks_cache_index_start_labels() has run.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "cache.h"
#include "ks.h"

struct ks_cache_index {
	/* index value -> struct set (cache_index.c) */
	struct ks_imap *sets;
	/* labels are filed */
	bool labels;
	/* scratch: packed index values */
	struct ks_buf old_values, new_values;
};

void ks_cache_index_init(struct ks_cache_index *x);
/* Free the sets, not the objects. */
void ks_cache_index_deinit(struct ks_cache_index *x);

/* File o, whose object (stripped, as o->json holds it) is json. */
void ks_cache_index_add(struct ks_cache_index *x, const cJSON *json, const struct ks_cache_obj *o);
/* o, whose object is json, takes the place of old (which must still be readable). */
void ks_cache_index_replace(struct ks_cache_index *x, const struct ks_cache_obj *old,
			    const cJSON *json, const struct ks_cache_obj *o);
/* Unfile old (which must still be readable). */
void ks_cache_index_del(struct ks_cache_index *x, const struct ks_cache_obj *old);

/* File labels from now on; the caller then passes every cached object to file_labels. */
void ks_cache_index_start_labels(struct ks_cache_index *x);
void ks_cache_index_file_labels(struct ks_cache_index *x, const struct ks_cache_obj *o);

/* The objects filed under "<tag>:<a>" or "<tag>:<a>=<b>" (b not NULL); see cache.h. */
size_t ks_cache_index_get(const struct ks_cache_index *x, char tag, const char *a, const char *b,
			  const struct ks_cache_obj *const **out);
