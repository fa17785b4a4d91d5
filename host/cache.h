#pragma once
/*
 * cache.h: the object cache behind every read a controller or plugin makes. Each
 * object is kept as compact JSON text with metadata.managedFields and the
 * last-applied annotation stripped (not a cJSON tree, not a Lua table), indexed by
 * namespace/name, by namespace, by label key=value and by owner UID.
 *
 * Handlers see every change after the cache holds it: adds, updates and deletes,
 * including the synthetic ones a relist produces. Single-threaded, like the host.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

struct ks_cache;

struct ks_cache_obj {
	const char *key;  /* "namespace/name", or "name" for cluster-scoped objects */
	const char *json; /* compact, stripped, len bytes (NUL-terminated too) */
	size_t len;
	/*
	 * metadata.uid is not copied out of the JSON (a copy would add a twelfth to what
	 * an object costs): it is the uid_len bytes at json + uid_off, not NUL-terminated,
	 * and uid_len is 0 when the object has none. ks_cache_uid() gives it as a string.
	 */
	unsigned uid_off, uid_len;
	const char *resource_version;
	long long generation;
};

/*
 * Change handlers; any may be NULL. Objects are valid only during the call. A handler
 * must not change the cache it is called from.
 */
struct ks_cache_handler {
	void (*on_add)(const struct ks_cache_obj *obj, void *data);
	void (*on_update)(const struct ks_cache_obj *old, const struct ks_cache_obj *obj,
			  void *data);
	void (*on_delete)(const struct ks_cache_obj *old, void *data);
	void *data;
};

/* An empty cache. Never NULL. */
struct ks_cache *ks_cache_new(void);
void ks_cache_free(struct ks_cache *c);
/* Register a handler (copied). Returns 0, or -ENOSPC past 16 handlers. */
int ks_cache_add_handler(struct ks_cache *c, const struct ks_cache_handler *h);
/* Remove the handler equal to h (same callbacks and data). Returns 0 or -ENOENT. Not
 * from inside a handler of the same cache. */
int ks_cache_remove_handler(struct ks_cache *c, const struct ks_cache_handler *h);

/*
 * Insert or replace obj, a Kubernetes object; strips it in place. An update whose
 * resourceVersion equals the cached one changes nothing and calls no handler.
 * Returns 0, or -EINVAL (nothing changes) when obj has no metadata.name.
 */
int ks_cache_upsert(struct ks_cache *c, cJSON *obj);
/* Remove the object obj names. Returns 0, or -ENOENT when it was not cached. */
int ks_cache_remove(struct ks_cache *c, const cJSON *obj);
/*
 * Make the cache hold exactly items (a LIST's array): add what is new, update what
 * has another resourceVersion, and delete what is gone, calling the handlers for
 * each. Items without a name are skipped. Strips the items in place.
 */
void ks_cache_replace(struct ks_cache *c, cJSON *items);

/* The object ns/name (ns NULL or "" for cluster scope), or NULL. */
const struct ks_cache_obj *ks_cache_get(const struct ks_cache *c, const char *ns, const char *name);
size_t ks_cache_len(const struct ks_cache *c);

/*
 * Index lookups: the objects in namespace ns, with label key=value, or owned by the
 * object with UID uid. *out points into the cache and is valid until the next
 * change. Return the number of objects. The label index is built by the first
 * ks_cache_by_label() (one pass over the objects; it costs 8 bytes per object per
 * label) and kept up to date from then on.
 */
size_t ks_cache_by_namespace(const struct ks_cache *c, const char *ns,
			     const struct ks_cache_obj *const **out);
size_t ks_cache_by_label(const struct ks_cache *c, const char *key, const char *value,
			 const struct ks_cache_obj *const **out);
size_t ks_cache_by_owner(const struct ks_cache *c, const char *uid,
			 const struct ks_cache_obj *const **out);
/* ... whose status.id is id (the external resource an object stands for). */
size_t ks_cache_by_status_id(const struct ks_cache *c, const char *id,
			     const struct ks_cache_obj *const **out);

/* Call cb for every object, in no particular order; cb must not change the cache. */
void ks_cache_foreach(const struct ks_cache *c,
		      void (*cb)(const struct ks_cache_obj *obj, void *data), void *data);

/* o's uid, NUL-terminated, in buf (cap bytes; truncated to fit). Returns buf. */
const char *ks_cache_uid(const struct ks_cache_obj *o, char *buf, size_t cap);

/* Bytes of JSON text held, for the benchmarks' overhead figure. */
size_t ks_cache_json_bytes(const struct ks_cache *c);
