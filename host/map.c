/* map.c: string-keyed open-addressing hash map (linear probing, tombstones). */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ks.h"

struct slot {
	uint64_t hash;
	char *key; /* NULL: empty; tomb: deleted */
	void *value;
};

struct ks_map {
	struct slot *slots;
	size_t cap; /* a power of two */
	size_t len;
	size_t tombs;
};

static char tomb_key;
#define TOMB (&tomb_key)

static uint64_t hash_key(const char *key)
{
	/* FNV-1a, then a murmur3 finalizer so the low bits mix well. */
	uint64_t h = ks_hash(key, strlen(key));

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static size_t cap_for(size_t n)
{
	size_t cap = 8;

	/* Keep the load at or under one half after a resize. */
	while (cap < n * 2)
		cap *= 2;
	return cap;
}

struct ks_map *ks_map_new(size_t hint)
{
	struct ks_map *m = ks_xcalloc(1, sizeof(*m));

	m->cap = cap_for(hint);
	m->slots = ks_xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

void ks_map_free(struct ks_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key && m->slots[i].key != TOMB)
			free(m->slots[i].key);
	}
	free(m->slots);
	free(m);
}

/* The slot holding key, or NULL. */
static struct slot *find(const struct ks_map *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct slot *s = &m->slots[i];

		if (!s->key)
			return NULL;
		if (s->key != TOMB && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
}

static void rehash(struct ks_map *m, size_t cap)
{
	struct slot *old = m->slots;
	size_t old_cap = m->cap;

	m->slots = ks_xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->tombs = 0;
	for (size_t i = 0; i < old_cap; i++) {
		size_t j;

		if (!old[i].key || old[i].key == TOMB)
			continue;
		for (j = old[i].hash & (cap - 1); m->slots[j].key; j = (j + 1) & (cap - 1))
			;
		m->slots[j] = old[i];
	}
	free(old);
}

void *ks_map_get(const struct ks_map *m, const char *key)
{
	struct slot *s = find(m, key, hash_key(key));

	return s ? s->value : NULL;
}

bool ks_map_has(const struct ks_map *m, const char *key)
{
	return find(m, key, hash_key(key)) != NULL;
}

void *ks_map_put(struct ks_map *m, const char *key, void *value)
{
	uint64_t h = hash_key(key);
	struct slot *s = find(m, key, h);
	struct slot *free_slot = NULL;
	void *prev;
	size_t mask;

	if (s) {
		prev = s->value;
		s->value = value;
		return prev;
	}
	/* Load, tombstones included, stays at or under three quarters. */
	if ((m->len + m->tombs + 1) * 4 > m->cap * 3)
		rehash(m, cap_for(m->len + 1));
	mask = m->cap - 1;
	for (size_t i = h & mask; !free_slot; i = (i + 1) & mask) {
		if (!m->slots[i].key || m->slots[i].key == TOMB)
			free_slot = &m->slots[i];
	}
	if (free_slot->key == TOMB)
		m->tombs--;
	free_slot->hash = h;
	free_slot->key = ks_xstrdup(key);
	free_slot->value = value;
	m->len++;
	return NULL;
}

void *ks_map_del(struct ks_map *m, const char *key)
{
	struct slot *s = find(m, key, hash_key(key));
	void *prev;

	if (!s)
		return NULL;
	prev = s->value;
	free(s->key);
	s->key = TOMB;
	s->value = NULL;
	m->len--;
	m->tombs++;
	return prev;
}

size_t ks_map_len(const struct ks_map *m)
{
	return m->len;
}

bool ks_map_next(const struct ks_map *m, size_t *iter, const char **key, void **value)
{
	for (size_t i = *iter; i < m->cap; i++) {
		const struct slot *s = &m->slots[i];

		if (!s->key || s->key == TOMB)
			continue;
		if (key)
			*key = s->key;
		if (value)
			*value = s->value;
		*iter = i + 1;
		return true;
	}
	*iter = m->cap;
	return false;
}

/*
 * The intrusive map: the same probing, but a slot is just the value pointer. The key
 * is read through key_of and hashes are recomputed on rehash (keys are short: a
 * rehash of 10,000 objects costs well under a millisecond).
 */
struct ks_imap {
	void **slots; /* NULL: empty; ITOMB: deleted */
	size_t cap;   /* a power of two */
	size_t len;
	size_t tombs;
	ks_imap_key_cb key_of;
};

static char itomb;
#define ITOMB ((void *)&itomb)

struct ks_imap *ks_imap_new(ks_imap_key_cb key_of, size_t hint)
{
	struct ks_imap *m = ks_xcalloc(1, sizeof(*m));

	m->key_of = key_of;
	m->cap = cap_for(hint);
	m->slots = ks_xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

void ks_imap_free(struct ks_imap *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

/* The slot holding key, or NULL. */
static void **ifind(const struct ks_imap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		void *v = m->slots[i];

		if (!v)
			return NULL;
		if (v != ITOMB && strcmp(m->key_of(v), key) == 0)
			return &m->slots[i];
	}
}

static void irehash(struct ks_imap *m, size_t cap)
{
	void **old = m->slots;
	size_t old_cap = m->cap;

	m->slots = ks_xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->tombs = 0;
	for (size_t i = 0; i < old_cap; i++) {
		size_t j;

		if (!old[i] || old[i] == ITOMB)
			continue;
		j = hash_key(m->key_of(old[i])) & (cap - 1);
		while (m->slots[j])
			j = (j + 1) & (cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *ks_imap_get(const struct ks_imap *m, const char *key)
{
	void **s = ifind(m, key, hash_key(key));

	return s ? *s : NULL;
}

void *ks_imap_put(struct ks_imap *m, void *value)
{
	const char *key = m->key_of(value);
	uint64_t h = hash_key(key);
	void **s = ifind(m, key, h), *prev;
	size_t mask, i;

	ks_require(value && value != ITOMB);
	if (s) {
		prev = *s;
		*s = value;
		return prev;
	}
	if ((m->len + m->tombs + 1) * 4 > m->cap * 3)
		irehash(m, cap_for(m->len + 1));
	mask = m->cap - 1;
	for (i = h & mask; m->slots[i] && m->slots[i] != ITOMB; i = (i + 1) & mask)
		;
	if (m->slots[i] == ITOMB)
		m->tombs--;
	m->slots[i] = value;
	m->len++;
	return NULL;
}

void *ks_imap_del(struct ks_imap *m, const char *key)
{
	void **s = ifind(m, key, hash_key(key)), *prev;

	if (!s)
		return NULL;
	prev = *s;
	*s = ITOMB;
	m->len--;
	m->tombs++;
	return prev;
}

size_t ks_imap_len(const struct ks_imap *m)
{
	return m->len;
}

bool ks_imap_next(const struct ks_imap *m, size_t *iter, void **value)
{
	for (size_t i = *iter; i < m->cap; i++) {
		if (!m->slots[i] || m->slots[i] == ITOMB)
			continue;
		*value = m->slots[i];
		*iter = i + 1;
		return true;
	}
	*iter = m->cap;
	return false;
}
