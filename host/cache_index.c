/*
 * cache_index.c: the cache's secondary indexes. A set is one allocation: its index
 * value, then the object pointers, growing by an eighth and using whatever slack
 * malloc gives it. It is an array: removal is a linear scan of pointers, cheap next to
 * the JSON work every change already does.
 */
#include "cache_index.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "map.h"

/* Index values shorter than this are built on the stack. */
#define VALUE_BUF 320

struct set {
	uint32_t n, cap;
	uint32_t klen;
	char key[]; /* klen + 1 bytes, padding to a pointer, then cap object pointers */
};

static const char *set_key_of(const void *v)
{
	return ((const struct set *)v)->key;
}

void ks_cache_index_init(struct ks_cache_index *x)
{
	x->sets = ks_imap_new(set_key_of, 0);
	x->labels = false;
	ks_buf_init(&x->old_values);
	ks_buf_init(&x->new_values);
}

void ks_cache_index_deinit(struct ks_cache_index *x)
{
	size_t it = 0;
	void *v;

	while (ks_imap_next(x->sets, &it, &v))
		free(v);
	ks_imap_free(x->sets);
	ks_buf_deinit(&x->old_values);
	ks_buf_deinit(&x->new_values);
}

/* --- sets ---------------------------------------------------------------------------- */

static size_t set_off(uint32_t klen)
{
	size_t a = sizeof(void *);

	return (offsetof(struct set, key) + klen + 1 + a - 1) / a * a;
}

static const struct ks_cache_obj **set_items(const struct set *s)
{
	return (const struct ks_cache_obj **)((char *)s + set_off(s->klen));
}

/* Reallocate s for about want pointers, keeping whatever extra room malloc gives. */
static struct set *set_resize(struct ks_cache_index *x, struct set *s, size_t want)
{
	size_t off = set_off(s->klen);

	ks_imap_del(x->sets, s->key); /* the table borrows the key, which may move */
	s = ks_xrealloc(s, off + want * sizeof(void *));
	s->cap = (uint32_t)KS_MIN((malloc_usable_size(s) - off) / sizeof(void *), UINT32_MAX);
	ks_imap_put(x->sets, s);
	return s;
}

static void set_add(struct ks_cache_index *x, const char *ixkey, const struct ks_cache_obj *o)
{
	struct set *s = ks_imap_get(x->sets, ixkey);

	if (!s) {
		size_t klen = strlen(ixkey), off = set_off((uint32_t)klen);

		s = ks_xmalloc(off + sizeof(void *));
		s->n = 0;
		s->klen = (uint32_t)klen;
		memcpy(s->key, ixkey, klen + 1);
		s->cap = (uint32_t)((malloc_usable_size(s) - off) / sizeof(void *));
		ks_imap_put(x->sets, s);
	} else if (s->n == s->cap) {
		s = set_resize(x, s, (size_t)s->cap + s->cap / 8 + 4);
	}
	set_items(s)[s->n++] = o;
}

/* Where o sits in the set ixkey, or NULL. */
static const struct ks_cache_obj **set_find(struct ks_cache_index *x, const char *ixkey,
					    const struct ks_cache_obj *o, struct set **sp)
{
	struct set *s = ks_imap_get(x->sets, ixkey);
	const struct ks_cache_obj **v;

	*sp = s;
	if (!s)
		return NULL;
	v = set_items(s);
	for (uint32_t i = 0; i < s->n; i++) {
		if (v[i] == o)
			return &v[i];
	}
	return NULL;
}

static void set_del(struct ks_cache_index *x, const char *ixkey, const struct ks_cache_obj *o)
{
	struct set *s;
	const struct ks_cache_obj **at = set_find(x, ixkey, o, &s);

	if (!at)
		return;
	*at = set_items(s)[--s->n];
	if (s->n == 0) {
		ks_imap_del(x->sets, s->key);
		free(s);
	} else if (s->cap > 16 && s->n < s->cap / 2) {
		set_resize(x, s, (size_t)s->n + s->n / 8 + 4);
	}
}

/* o takes old's place in the set ixkey. */
static void set_swap(struct ks_cache_index *x, const char *ixkey, const struct ks_cache_obj *old,
		     const struct ks_cache_obj *o)
{
	struct set *s;
	const struct ks_cache_obj **at = set_find(x, ixkey, old, &s);

	ks_require(at);
	*at = o;
}

/* --- index values -------------------------------------------------------------------- */

static void put_value(struct ks_buf *b, char tag, const char *x, const char *y)
{
	char head[2] = { tag, ':' };

	ks_buf_append(b, head, 2);
	ks_buf_puts(b, x);
	if (y) {
		ks_buf_append(b, "=", 1);
		ks_buf_puts(b, y);
	}
	ks_buf_append(b, "", 1);
}

static void label_values(const cJSON *labels, struct ks_buf *b)
{
	const cJSON *it;

	if (!cJSON_IsObject(labels))
		return;
	cJSON_ArrayForEach(it, labels)
	{
		if (cJSON_IsString(it))
			put_value(b, 'l', it->string, it->valuestring);
	}
}

static void owner_values(const cJSON *refs, struct ks_buf *b)
{
	const cJSON *it;

	if (!cJSON_IsArray(refs))
		return;
	cJSON_ArrayForEach(it, refs)
	{
		const char *uid = ks_json_str(it, "uid");

		if (uid)
			put_value(b, 'o', uid, NULL);
	}
}

/* status.id: what an external resource is known by (a cloud's notification names it). */
static void id_value(const char *id, struct ks_buf *b)
{
	if (id && *id)
		put_value(b, 'i', id, NULL);
}

/*
 * The index values of obj, packed into b: "n:<ns>\0l:<k>=<v>\0o:<uid>\0i:<id>\0\0", labels
 * only once the label index exists.
 */
static void index_values(const struct ks_cache_index *x, const cJSON *obj, struct ks_buf *b)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *ns = ks_json_str(meta, "namespace");

	ks_buf_reset(b);
	if (ns && *ns)
		put_value(b, 'n', ns, NULL);
	if (x->labels)
		label_values(cJSON_GetObjectItemCaseSensitive(meta, "labels"), b);
	owner_values(cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences"), b);
	id_value(ks_json_str(cJSON_GetObjectItemCaseSensitive(obj, "status"), "id"), b);
	ks_buf_append(b, "", 1);
}

/*
 * Reading index values back from a cached object's JSON, without parsing all of it
 * (a full parse would cost an update a third more): a scan finds the spans of
 * metadata.namespace, .labels and .ownerReferences and only those are parsed. The text
 * is our own compact print, so it is valid JSON.
 */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

/* The byte after the value at p. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		char ch = *p;

		if (ch == '"') {
			p = skip_string(p, end);
			if (depth == 0)
				return p;
			continue;
		}
		if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (depth == 0)
				return p; /* a number or literal, ended by its container */
			if (--depth == 0)
				return p + 1;
		} else if (ch == ',' && depth == 0) {
			return p;
		}
		p++;
	}
	return end;
}

/* The span [*v, *ve) of the member name of the object at p, or false. */
static bool member_span(const char *p, const char *end, const char *name, const char **v,
			const char **ve)
{
	size_t n = strlen(name);

	if (p >= end || *p != '{')
		return false;
	for (p++; p < end && *p == '"';) {
		const char *k = p + 1, *colon = skip_string(p, end);

		if (colon >= end || *colon != ':')
			return false;
		*v = colon + 1;
		*ve = skip_value(*v, end);
		if ((size_t)(colon - 1 - k) == n && memcmp(k, name, n) == 0)
			return true;
		p = *ve < end && **ve == ',' ? *ve + 1 : *ve;
	}
	return false;
}

/* The value of member name of the object [p, end), parsed; NULL when absent. */
static cJSON *parse_member(const char *p, const char *end, const char *name)
{
	const char *v, *ve;

	return member_span(p, end, name, &v, &ve) ? ks_json_parse(v, (size_t)(ve - v)) : NULL;
}

/* The index values of a cached object, read back from its JSON: as index_values(). */
static void stored_values(const struct ks_cache_index *x, const struct ks_cache_obj *o,
			  struct ks_buf *b)
{
	const char *m, *me;
	cJSON *v;

	ks_buf_reset(b);
	ks_require(member_span(o->json, o->json + o->len, "metadata", &m, &me));
	v = parse_member(m, me, "namespace");
	if (cJSON_IsString(v) && *v->valuestring)
		put_value(b, 'n', v->valuestring, NULL);
	cJSON_Delete(v);
	if (x->labels) {
		v = parse_member(m, me, "labels");
		label_values(v, b);
		cJSON_Delete(v);
	}
	v = parse_member(m, me, "ownerReferences");
	owner_values(v, b);
	cJSON_Delete(v);
	if (member_span(o->json, o->json + o->len, "status", &m, &me)) {
		v = parse_member(m, me, "id");
		id_value(cJSON_IsString(v) ? v->valuestring : NULL, b);
		cJSON_Delete(v);
	}
	ks_buf_append(b, "", 1);
}

/* Size of packed values, final NUL included. */
static size_t values_len(const struct ks_buf *b)
{
	size_t n = 0;

	while (b->data[n])
		n += strlen(b->data + n) + 1;
	return n + 1;
}

static void index_add(struct ks_cache_index *x, const struct ks_buf *b,
		      const struct ks_cache_obj *o)
{
	for (const char *k = b->data; *k; k += strlen(k) + 1)
		set_add(x, k, o);
}

static void index_del(struct ks_cache_index *x, const struct ks_buf *b,
		      const struct ks_cache_obj *o)
{
	for (const char *k = b->data; *k; k += strlen(k) + 1)
		set_del(x, k, o);
}

/* --- the unit's interface ------------------------------------------------------------- */

void ks_cache_index_add(struct ks_cache_index *x, const cJSON *json, const struct ks_cache_obj *o)
{
	index_values(x, json, &x->new_values);
	index_add(x, &x->new_values, o);
}

void ks_cache_index_replace(struct ks_cache_index *x, const struct ks_cache_obj *old,
			    const cJSON *json, const struct ks_cache_obj *o)
{
	size_t n;

	index_values(x, json, &x->new_values);
	stored_values(x, old, &x->old_values);
	n = values_len(&x->new_values);
	if (values_len(&x->old_values) == n &&
	    memcmp(x->old_values.data, x->new_values.data, n) == 0) {
		/* The usual update (status, spec): the same sets, o takes old's place. */
		for (const char *k = x->new_values.data; *k; k += strlen(k) + 1)
			set_swap(x, k, old, o);
		return;
	}
	index_del(x, &x->old_values, old);
	index_add(x, &x->new_values, o);
}

void ks_cache_index_del(struct ks_cache_index *x, const struct ks_cache_obj *old)
{
	stored_values(x, old, &x->old_values);
	index_del(x, &x->old_values, old);
}

void ks_cache_index_start_labels(struct ks_cache_index *x)
{
	x->labels = true;
}

void ks_cache_index_file_labels(struct ks_cache_index *x, const struct ks_cache_obj *o)
{
	cJSON *j = ks_json_parse(o->json, o->len);

	ks_require(j); /* we printed it */
	ks_buf_reset(&x->new_values);
	label_values(ks_json_path(j, "metadata.labels"), &x->new_values);
	ks_buf_append(&x->new_values, "", 1);
	index_add(x, &x->new_values, o);
	cJSON_Delete(j);
}

size_t ks_cache_index_get(const struct ks_cache_index *x, char tag, const char *a, const char *b,
			  const struct ks_cache_obj *const **out)
{
	char buf[VALUE_BUF], *k = buf;
	int n = b ? snprintf(buf, sizeof(buf), "%c:%s=%s", tag, a, b)
		  : snprintf(buf, sizeof(buf), "%c:%s", tag, a);
	struct set *s;

	if (n < 0 || (size_t)n >= sizeof(buf))
		k = b ? ks_xasprintf("%c:%s=%s", tag, a, b) : ks_xasprintf("%c:%s", tag, a);
	s = ks_imap_get(x->sets, k);
	if (k != buf)
		free(k);
	*out = s ? set_items(s) : NULL;
	return s ? s->n : 0;
}
