/*
 * cache.c: objects as stripped compact JSON, a primary index by key and secondary
 * indexes (namespace, label, owner) mapping an index value to a set of objects.
 * A set is an array: removal is a linear scan of pointers, cheap next to the JSON
 * work every change already does.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "map.h"

#define MAX_HANDLERS 16

/* One allocation per object: the struct, then key, uid, rv, index values and JSON. */
struct obj {
	struct ks_cache_obj pub;
	/* The index values this object is filed under: "n:<ns>\0l:<k>=<v>\0o:<uid>\0\0". */
	const char *ix;
	char data[];
};

struct set {
	size_t n, cap;
	struct obj **v;
};

struct ks_cache {
	struct ks_map *objs; /* key -> struct obj */
	struct ks_map *ix;   /* "n:ns", "l:k=v", "o:uid" -> struct set */
	struct ks_cache_handler handlers[MAX_HANDLERS];
	size_t nhandlers;
	size_t json_bytes;
};

struct ks_cache *ks_cache_new(void)
{
	struct ks_cache *c = ks_xcalloc(1, sizeof(*c));

	c->objs = ks_map_new(0);
	c->ix = ks_map_new(0);
	return c;
}

static void obj_free(struct obj *o)
{
	free(o);
}

void ks_cache_free(struct ks_cache *c)
{
	size_t it = 0;
	void *v;

	if (!c)
		return;
	while (ks_map_next(c->objs, &it, NULL, &v))
		obj_free(v);
	it = 0;
	while (ks_map_next(c->ix, &it, NULL, &v)) {
		struct set *s = v;

		free(s->v);
		free(s);
	}
	ks_map_free(c->objs);
	ks_map_free(c->ix);
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

static void set_add(struct ks_cache *c, const char *ixkey, struct obj *o)
{
	struct set *s = ks_map_get(c->ix, ixkey);

	if (!s) {
		s = ks_xcalloc(1, sizeof(*s));
		ks_map_put(c->ix, ixkey, s);
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->v = ks_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = o;
}

static void set_del(struct ks_cache *c, const char *ixkey, struct obj *o)
{
	struct set *s = ks_map_get(c->ix, ixkey);

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == o) {
			s->v[i] = s->v[--s->n];
			break;
		}
	}
	if (s->n == 0) {
		ks_map_del(c->ix, ixkey);
		free(s->v);
		free(s);
	}
}

static void index_obj(struct ks_cache *c, struct obj *o, bool add)
{
	for (const char *k = o->ix; *k; k += strlen(k) + 1) {
		if (add)
			set_add(c, k, o);
		else
			set_del(c, k, o);
	}
}

/* The index values of obj, packed. */
static char *index_values(const cJSON *obj, const char *ns)
{
	const cJSON *labels = ks_json_path(obj, "metadata.labels"), *it;
	const cJSON *owners = ks_json_path(obj, "metadata.ownerReferences");
	struct ks_buf b;

	ks_buf_init(&b);
	if (ns) {
		ks_buf_printf(&b, "n:%s", ns);
		ks_buf_append(&b, "", 1);
	}
	cJSON_ArrayForEach(it, labels)
	{
		if (!cJSON_IsString(it))
			continue;
		ks_buf_printf(&b, "l:%s=%s", it->string, it->valuestring);
		ks_buf_append(&b, "", 1);
	}
	cJSON_ArrayForEach(it, owners)
	{
		const char *uid = ks_json_str(it, "uid");

		if (!uid)
			continue;
		ks_buf_printf(&b, "o:%s", uid);
		ks_buf_append(&b, "", 1);
	}
	ks_buf_append(&b, "", 1);
	return ks_buf_steal(&b);
}

static char *obj_key(const cJSON *obj)
{
	const char *name = ks_json_str(obj, "metadata.name");
	const char *ns = ks_json_str(obj, "metadata.namespace");

	if (!name || !*name)
		return NULL;
	return ns && *ns ? ks_xasprintf("%s/%s", ns, name) : ks_xstrdup(name);
}

static char *put(char **p, const char *s, size_t n)
{
	char *at = *p;

	memcpy(at, s, n);
	*p += n;
	return at;
}

/* A new object for json (stripped in place), filed under key (taken). */
static struct obj *obj_new(cJSON *json, char *key)
{
	const char *uid, *rv, *ns;
	char *text, *ix, *p;
	size_t klen, ulen, rlen, ixlen, tlen;
	struct obj *o;

	ks_json_strip_object(json);
	text = ks_json_print(json);
	uid = ks_json_str(json, "metadata.uid");
	rv = ks_json_str(json, "metadata.resourceVersion");
	ns = ks_json_str(json, "metadata.namespace");
	ix = index_values(json, ns && *ns ? ns : NULL);
	uid = uid ? uid : "";
	rv = rv ? rv : "";
	klen = strlen(key) + 1;
	ulen = strlen(uid) + 1;
	rlen = strlen(rv) + 1;
	for (ixlen = 0; ix[ixlen]; ixlen += strlen(ix + ixlen) + 1)
		;
	ixlen++;
	tlen = strlen(text);
	o = ks_xmalloc(sizeof(*o) + klen + ulen + rlen + ixlen + tlen + 1);
	p = o->data;
	o->pub.key = put(&p, key, klen);
	o->pub.uid = put(&p, uid, ulen);
	o->pub.resource_version = put(&p, rv, rlen);
	o->ix = put(&p, ix, ixlen);
	o->pub.json = put(&p, text, tlen + 1);
	o->pub.len = tlen;
	o->pub.generation = ks_json_int(json, "metadata.generation", 0);
	free(text);
	free(ix);
	free(key);
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

/* File o under its key, replacing (and returning) what was there. */
static struct obj *store(struct ks_cache *c, struct obj *o)
{
	struct obj *old = ks_map_put(c->objs, o->pub.key, o);

	if (old) {
		index_obj(c, old, false);
		c->json_bytes -= old->pub.len;
	}
	index_obj(c, o, true);
	c->json_bytes += o->pub.len;
	return old;
}

int ks_cache_upsert(struct ks_cache *c, cJSON *json)
{
	char *key = obj_key(json);
	const char *rv = ks_json_str(json, "metadata.resourceVersion");
	struct obj *o, *old;

	if (!key)
		return -EINVAL;
	old = ks_map_get(c->objs, key);
	if (old && rv && *rv && strcmp(old->pub.resource_version, rv) == 0) {
		free(key);
		return 0;
	}
	o = obj_new(json, key);
	old = store(c, o);
	if (old)
		notify_update(c, old, o);
	else
		notify_add(c, o);
	obj_free(old);
	return 0;
}

int ks_cache_remove(struct ks_cache *c, const cJSON *json)
{
	char *key = obj_key(json);
	struct obj *old;

	if (!key)
		return -EINVAL;
	old = ks_map_del(c->objs, key);
	free(key);
	if (!old)
		return -ENOENT;
	index_obj(c, old, false);
	c->json_bytes -= old->pub.len;
	notify_delete(c, old);
	obj_free(old);
	return 0;
}

void ks_cache_replace(struct ks_cache *c, cJSON *items)
{
	struct ks_map *seen = ks_map_new((size_t)cJSON_GetArraySize(items));
	const char **gone = NULL;
	size_t ngone = 0, it = 0;
	const char *key;
	cJSON *item;

	cJSON_ArrayForEach(item, items)
	{
		char *k = obj_key(item);

		if (!k)
			continue;
		ks_map_put(seen, k, NULL);
		free(k);
		ks_cache_upsert(c, item);
	}
	gone = ks_xmalloc((ks_map_len(c->objs) + 1) * sizeof(*gone));
	while (ks_map_next(c->objs, &it, &key, NULL)) {
		if (!ks_map_has(seen, key))
			gone[ngone++] = key;
	}
	for (size_t i = 0; i < ngone; i++) {
		struct obj *old = ks_map_del(c->objs, gone[i]);

		index_obj(c, old, false);
		c->json_bytes -= old->pub.len;
		notify_delete(c, old);
		obj_free(old);
	}
	free(gone);
	ks_map_free(seen);
}

const struct ks_cache_obj *ks_cache_get(const struct ks_cache *c, const char *ns, const char *name)
{
	struct obj *o;

	if (ns && *ns) {
		char *k = ks_xasprintf("%s/%s", ns, name);

		o = ks_map_get(c->objs, k);
		free(k);
	} else {
		o = ks_map_get(c->objs, name);
	}
	return o ? &o->pub : NULL;
}

size_t ks_cache_len(const struct ks_cache *c)
{
	return ks_map_len(c->objs);
}

static size_t lookup(const struct ks_cache *c, const char *ixkey,
		     const struct ks_cache_obj *const **out)
{
	struct set *s = ks_map_get(c->ix, ixkey);

	/* struct obj starts with its ks_cache_obj, so the set reads as one of those. */
	*out = s ? (const struct ks_cache_obj *const *)s->v : NULL;
	return s ? s->n : 0;
}

size_t ks_cache_by_namespace(const struct ks_cache *c, const char *ns,
			     const struct ks_cache_obj *const **out)
{
	char *k = ks_xasprintf("n:%s", ns);
	size_t n = lookup(c, k, out);

	free(k);
	return n;
}

size_t ks_cache_by_label(const struct ks_cache *c, const char *key, const char *value,
			 const struct ks_cache_obj *const **out)
{
	char *k = ks_xasprintf("l:%s=%s", key, value);
	size_t n = lookup(c, k, out);

	free(k);
	return n;
}

size_t ks_cache_by_owner(const struct ks_cache *c, const char *uid,
			 const struct ks_cache_obj *const **out)
{
	char *k = ks_xasprintf("o:%s", uid);
	size_t n = lookup(c, k, out);

	free(k);
	return n;
}

void ks_cache_foreach(const struct ks_cache *c,
		      void (*cb)(const struct ks_cache_obj *obj, void *data), void *data)
{
	size_t it = 0;
	void *v;

	while (ks_map_next(c->objs, &it, NULL, &v))
		cb(&((struct obj *)v)->pub, data);
}

size_t ks_cache_json_bytes(const struct ks_cache *c)
{
	return c->json_bytes;
}
