/*
 * cache.c: objects as stripped compact JSON, a primary index by key, and the
 * secondary indexes of cache_index.c.
 *
 * Memory is what this unit is about (bench/bench_cache.c prints it):
 *  - an object is one allocation: its public struct, then its key, resourceVersion
 *    and JSON text, each NUL-terminated; its uid is an offset into the JSON text (a
 *    copy follows the text only if the text holds it escaped);
 *  - the primary index is an intrusive hash table (map.h) of object pointers that
 *    borrows each object's own key, so keys are never copied;
 *  - the secondary indexes keep no per-object record (cache_index.h), and the label
 *    index, the largest (an object has several labels) and one the host itself never
 *    reads, is built by the first ks_cache_by_label() and kept from then on.
 */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_index.h"
#include "json.h"
#include "ks.h"
#include "map.h"

#define MAX_HANDLERS 16
/* Keys shorter than this are built on the stack. */
#define KEY_BUF 320

struct obj {
	struct ks_cache_obj pub;
	char data[]; /* key, resourceVersion, JSON, [uid]: each NUL-terminated */
};

struct ks_cache {
	struct ks_imap *objs; /* key -> struct obj */
	struct ks_cache_index ix;
	struct ks_cache_handler handlers[MAX_HANDLERS];
	size_t nhandlers;
	size_t json_bytes;
};

static const char *obj_key_of(const void *v)
{
	return ((const struct obj *)v)->pub.key;
}

struct ks_cache *ks_cache_new(void)
{
	struct ks_cache *c = ks_xcalloc(1, sizeof(*c));

	c->objs = ks_imap_new(obj_key_of, 0);
	ks_cache_index_init(&c->ix);
	return c;
}

void ks_cache_free(struct ks_cache *c)
{
	size_t it = 0;
	void *v;

	if (!c)
		return;
	while (ks_imap_next(c->objs, &it, &v))
		free(v);
	ks_imap_free(c->objs);
	ks_cache_index_deinit(&c->ix);
	free(c);
}

int ks_cache_add_handler(struct ks_cache *c, const struct ks_cache_handler *h)
{
	if (c->nhandlers == MAX_HANDLERS)
		return -ENOSPC;
	c->handlers[c->nhandlers++] = *h;
	return 0;
}

int ks_cache_remove_handler(struct ks_cache *c, const struct ks_cache_handler *h)
{
	for (size_t i = 0; i < c->nhandlers; i++) {
		const struct ks_cache_handler *x = &c->handlers[i];

		if (x->on_add == h->on_add && x->on_update == h->on_update &&
		    x->on_delete == h->on_delete && x->data == h->data) {
			memmove(&c->handlers[i], &c->handlers[i + 1],
				(c->nhandlers - i - 1) * sizeof(*x));
			c->nhandlers--;
			return 0;
		}
	}
	return -ENOENT;
}

/* --- objects ------------------------------------------------------------------------- */

/* "ns/name" (or "name") in buf when it fits, else in a fresh string; see key_done(). */
static char *make_key(char *buf, const char *ns, const char *name)
{
	bool scoped = ns && *ns;
	int n = scoped ? snprintf(buf, KEY_BUF, "%s/%s", ns, name)
		       : snprintf(buf, KEY_BUF, "%s", name);

	if (n >= 0 && n < KEY_BUF)
		return buf;
	return scoped ? ks_xasprintf("%s/%s", ns, name) : ks_xstrdup(name);
}

static void key_done(char *key, const char *buf)
{
	if (key != buf)
		free(key);
}

/* The key of a Kubernetes object, or NULL when it has no name. */
static char *json_key(char *buf, const cJSON *obj)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = ks_json_str(meta, "name");

	if (!name || !*name)
		return NULL;
	return make_key(buf, ks_json_str(meta, "namespace"), name);
}

static char *put(char **p, const char *s, size_t n)
{
	char *at = *p;

	memcpy(at, s, n);
	*p += n;
	return at;
}

/* Where the JSON text holds uid verbatim, or -1. Any occurrence has the same bytes. */
static long find_uid(const char *text, size_t tlen, const char *uid, size_t ulen)
{
	const char *at = ulen ? memmem(text, tlen, uid, ulen) : NULL;

	return at ? at - text : -1;
}

/* A new object for json (already stripped), filed under key. */
static struct obj *obj_new(const cJSON *json, const char *key)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(json, "metadata");
	const char *uid = ks_json_str(meta, "uid"), *rv = ks_json_str(meta, "resourceVersion");
	char *text = ks_json_print(json), *p;
	size_t klen = strlen(key) + 1, rlen, tlen = strlen(text), ulen = uid ? strlen(uid) : 0;
	long at = find_uid(text, tlen, uid, ulen);
	size_t extra = ulen && at < 0 ? ulen + 1 : 0; /* a copy, for an escaped uid */
	struct obj *o;

	rv = rv ? rv : "";
	rlen = strlen(rv) + 1;
	o = ks_xmalloc(sizeof(*o) + klen + rlen + tlen + 1 + extra);
	p = o->data;
	o->pub.key = put(&p, key, klen);
	o->pub.resource_version = put(&p, rv, rlen);
	o->pub.json = put(&p, text, tlen + 1);
	o->pub.len = tlen;
	o->pub.uid_len = (unsigned)ulen;
	o->pub.uid_off =
		extra ? (unsigned)(put(&p, uid, extra) - o->pub.json) : (unsigned)KS_MAX(at, 0);
	o->pub.generation = ks_json_int(meta, "generation", 0);
	free(text);
	return o;
}

static void notify_add(struct ks_cache *c, const struct obj *o)
{
	for (size_t i = 0; i < c->nhandlers; i++) {
		if (c->handlers[i].on_add)
			c->handlers[i].on_add(&o->pub, c->handlers[i].data);
	}
}

static void notify_update(struct ks_cache *c, const struct obj *old, const struct obj *o)
{
	for (size_t i = 0; i < c->nhandlers; i++) {
		if (c->handlers[i].on_update)
			c->handlers[i].on_update(&old->pub, &o->pub, c->handlers[i].data);
	}
}

static void notify_delete(struct ks_cache *c, const struct obj *old)
{
	for (size_t i = 0; i < c->nhandlers; i++) {
		if (c->handlers[i].on_delete)
			c->handlers[i].on_delete(&old->pub, c->handlers[i].data);
	}
}

/* Take old (already out of the primary index) out of the secondary ones, tell, free. */
static void drop(struct ks_cache *c, struct obj *old)
{
	ks_cache_index_del(&c->ix, &old->pub);
	c->json_bytes -= old->pub.len;
	notify_delete(c, old);
	free(old);
}

int ks_cache_upsert(struct ks_cache *c, cJSON *json)
{
	char buf[KEY_BUF], *key = json_key(buf, json);
	const char *rv = ks_json_str(json, "metadata.resourceVersion");
	struct obj *o, *old;

	if (!key)
		return -EINVAL;
	old = ks_imap_get(c->objs, key);
	if (old && rv && *rv && strcmp(old->pub.resource_version, rv) == 0)
		goto out_key;
	ks_json_strip_object(json);
	o = obj_new(json, key);
	if (old)
		ks_cache_index_replace(&c->ix, &old->pub, json, &o->pub);
	else
		ks_cache_index_add(&c->ix, json, &o->pub);
	ks_imap_put(c->objs, o); /* replaces old, whose key is still readable */
	c->json_bytes += o->pub.len;
	if (old) {
		c->json_bytes -= old->pub.len;
		notify_update(c, old, o);
		free(old);
	} else {
		notify_add(c, o);
	}
out_key:
	key_done(key, buf);
	return 0;
}

int ks_cache_remove(struct ks_cache *c, const cJSON *json)
{
	char buf[KEY_BUF], *key = json_key(buf, json);
	struct obj *old;

	if (!key)
		return -EINVAL;
	old = ks_imap_del(c->objs, key);
	key_done(key, buf);
	if (!old)
		return -ENOENT;
	drop(c, old);
	return 0;
}

void ks_cache_replace(struct ks_cache *c, cJSON *items)
{
	struct ks_map *seen = ks_map_new((size_t)cJSON_GetArraySize(items));
	struct obj **gone;
	size_t ngone = 0, it = 0;
	cJSON *item;
	void *v;

	cJSON_ArrayForEach(item, items)
	{
		char buf[KEY_BUF], *k = json_key(buf, item);

		if (!k)
			continue;
		ks_map_put(seen, k, NULL);
		key_done(k, buf);
		ks_cache_upsert(c, item);
	}
	gone = ks_xmalloc((ks_imap_len(c->objs) + 1) * sizeof(*gone));
	while (ks_imap_next(c->objs, &it, &v)) {
		if (!ks_map_has(seen, obj_key_of(v)))
			gone[ngone++] = v;
	}
	for (size_t i = 0; i < ngone; i++) {
		ks_imap_del(c->objs, gone[i]->pub.key);
		drop(c, gone[i]);
	}
	free(gone);
	ks_map_free(seen);
}

const struct ks_cache_obj *ks_cache_get(const struct ks_cache *c, const char *ns, const char *name)
{
	char buf[KEY_BUF], *key = make_key(buf, ns, name);
	struct obj *o = ks_imap_get(c->objs, key);

	key_done(key, buf);
	return o ? &o->pub : NULL;
}

size_t ks_cache_len(const struct ks_cache *c)
{
	return ks_imap_len(c->objs);
}

size_t ks_cache_by_namespace(const struct ks_cache *c, const char *ns,
			     const struct ks_cache_obj *const **out)
{
	return ks_cache_index_get(&c->ix, 'n', ns, NULL, out);
}

static void file_labels(const struct ks_cache_obj *o, void *data)
{
	ks_cache_index_file_labels(data, o);
}

size_t ks_cache_by_label(const struct ks_cache *c, const char *key, const char *value,
			 const struct ks_cache_obj *const **out)
{
	/* Building the index changes no object and moves no set already handed out;
	 * every cache is ks_cache_new()'s, so it is not really const. */
	struct ks_cache_index *ix = (struct ks_cache_index *)&c->ix;

	if (!ix->labels) {
		ks_cache_index_start_labels(ix);
		ks_cache_foreach(c, file_labels, ix);
	}
	return ks_cache_index_get(ix, 'l', key, value, out);
}

size_t ks_cache_by_owner(const struct ks_cache *c, const char *uid,
			 const struct ks_cache_obj *const **out)
{
	return ks_cache_index_get(&c->ix, 'o', uid, NULL, out);
}

size_t ks_cache_by_status_id(const struct ks_cache *c, const char *id,
			     const struct ks_cache_obj *const **out)
{
	return ks_cache_index_get(&c->ix, 'i', id, NULL, out);
}

void ks_cache_foreach(const struct ks_cache *c,
		      void (*cb)(const struct ks_cache_obj *obj, void *data), void *data)
{
	size_t it = 0;
	void *v;

	while (ks_imap_next(c->objs, &it, &v))
		cb(&((struct obj *)v)->pub, data);
}

const char *ks_cache_uid(const struct ks_cache_obj *o, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.*s", (int)o->uid_len, o->json + o->uid_off);
	return buf;
}

size_t ks_cache_json_bytes(const struct ks_cache *c)
{
	return c->json_bytes;
}
