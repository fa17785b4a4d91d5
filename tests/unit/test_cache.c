/* test_cache.c: the object cache: stripping, indexes, handlers, relist diffs. */
#include <errno.h>
#include <stdlib.h>

#include "cache.h"
#include "ks.h"
#include "json.h"
#include "test.h"

struct seen {
	int adds, updates, deletes;
	char last[256];
};

static void on_add(const struct ks_cache_obj *o, void *d)
{
	struct seen *s = d;

	s->adds++;
	snprintf(s->last, sizeof(s->last), "add %s", o->key);
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *d)
{
	struct seen *s = d;

	s->updates++;
	snprintf(s->last, sizeof(s->last), "update %s %s->%s", o->key, old->resource_version,
		 o->resource_version);
}

static void on_delete(const struct ks_cache_obj *o, void *d)
{
	struct seen *s = d;

	s->deletes++;
	snprintf(s->last, sizeof(s->last), "delete %s", o->key);
}

static cJSON *mk(const char *ns, const char *name, const char *rv, const char *extra)
{
	char *t = ks_xasprintf("{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
			       "\"uid\":\"u-%s\",\"resourceVersion\":\"%s\"%s}}",
			       name, ns, name, rv, extra ? extra : "");
	cJSON *j = cJSON_Parse(t);

	free(t);
	return j;
}

static struct ks_cache *new_cache(struct seen *s)
{
	struct ks_cache *c = ks_cache_new();

	memset(s, 0, sizeof(*s));
	ks_cache_add_handler(c, &(struct ks_cache_handler){ on_add, on_update, on_delete, s });
	return c;
}

static void upsert(struct ks_cache *c, cJSON *j)
{
	ks_cache_upsert(c, j);
	cJSON_Delete(j);
}

TEST(strips_managed_fields_and_last_applied)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *o;
	char uid[64];

	upsert(c,
	       mk("ns", "a", "1",
		  ",\"managedFields\":[{\"manager\":\"kubectl\"}],\"annotations\":{"
		  "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\",\"keep\":\"x\"}"));
	o = ks_cache_get(c, "ns", "a");
	ASSERT(o);
	ASSERT_STR(o->json, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"uid\":\"u-a\","
			    "\"resourceVersion\":\"1\",\"annotations\":{\"keep\":\"x\"}}}");
	ASSERT_EQ(o->len, strlen(o->json));
	ASSERT_STR(ks_cache_uid(o, uid, sizeof(uid)), "u-a");
	ASSERT_EQ(o->uid_len, 3);
	ASSERT_EQ(ks_cache_json_bytes(c), o->len);
	ks_cache_free(c);
}

TEST(add_update_delete_in_order_and_same_rv_ignored)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	cJSON *j;

	upsert(c, mk("ns", "a", "1", NULL));
	ASSERT_STR(s.last, "add ns/a");
	upsert(c, mk("ns", "a", "1", NULL));
	ASSERT_EQ(s.updates, 0);
	upsert(c, mk("ns", "a", "2", NULL));
	ASSERT_STR(s.last, "update ns/a 1->2");
	j = mk("ns", "a", "3", NULL);
	ASSERT_EQ(ks_cache_remove(c, j), 0);
	ASSERT_EQ(ks_cache_remove(c, j), -ENOENT);
	cJSON_Delete(j);
	ASSERT_STR(s.last, "delete ns/a");
	ASSERT_EQ(s.adds, 1);
	ASSERT_EQ(s.deletes, 1);
	ASSERT_EQ(ks_cache_len(c), 0);
	ASSERT_EQ(ks_cache_json_bytes(c), 0);
	ks_cache_free(c);
}

TEST(nameless_object_refused)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	cJSON *j = cJSON_Parse("{\"metadata\":{}}");

	ASSERT_EQ(ks_cache_upsert(c, j), -EINVAL);
	cJSON_Delete(j);
	ASSERT_EQ(s.adds, 0);
	ks_cache_free(c);
}

TEST(indexes_follow_changes)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *const *v;

	upsert(c, mk("ns1", "a", "1", ",\"labels\":{\"app\":\"x\"}"));
	upsert(c, mk("ns1", "b", "1",
		     ",\"labels\":{\"app\":\"y\"},\"ownerReferences\":[{\"uid\":\"u-a\"}]"));
	upsert(c, mk("ns2", "c", "1", ",\"labels\":{\"app\":\"x\"}"));
	ASSERT_EQ(ks_cache_by_namespace(c, "ns1", &v), 2);
	ASSERT_EQ(ks_cache_by_label(c, "app", "x", &v), 2);
	ASSERT_EQ(ks_cache_by_owner(c, "u-a", &v), 1);
	ASSERT_STR(v[0]->key, "ns1/b");
	/* b loses its owner and changes label: the indexes move with it. */
	upsert(c, mk("ns1", "b", "2", ",\"labels\":{\"app\":\"x\"}"));
	ASSERT_EQ(ks_cache_by_owner(c, "u-a", &v), 0);
	ASSERT_EQ(ks_cache_by_label(c, "app", "x", &v), 3);
	ASSERT_EQ(ks_cache_by_label(c, "app", "y", &v), 0);
	ASSERT_EQ(ks_cache_by_namespace(c, "ns3", &v), 0);
	ks_cache_free(c);
}

static cJSON *with_status(const char *name, const char *rv, const char *status)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
		 "\"resourceVersion\":\"%s\"},\"spec\":{\"id\":\"decoy\"},\"status\":%s}",
		 name, name, rv, status);
	return cJSON_Parse(buf);
}

TEST(status_id_index_follows_changes)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *const *v;

	upsert(c, with_status("a", "1", "{\"resource\":{\"id\":\"x\"},\"id\":\"srv-1\"}"));
	upsert(c, with_status("b", "1", "{}"));
	ASSERT_EQ(ks_cache_by_status_id(c, "srv-1", &v), 1);
	ASSERT_STR(v[0]->key, "ns/a");
	ASSERT_EQ(ks_cache_by_status_id(c, "decoy", &v), 0);
	ASSERT_EQ(ks_cache_by_status_id(c, "x", &v), 0);
	/* a recovery: a new server, status.id moves */
	upsert(c, with_status("a", "2", "{\"id\":\"srv-2\"}"));
	upsert(c, with_status("b", "2", "{\"id\":\"srv-1\"}"));
	ASSERT_EQ(ks_cache_by_status_id(c, "srv-2", &v), 1);
	ASSERT_STR(v[0]->key, "ns/a");
	ASSERT_EQ(ks_cache_by_status_id(c, "srv-1", &v), 1);
	ASSERT_STR(v[0]->key, "ns/b");
	cJSON *j = with_status("a", "3", "{}");
	ASSERT_EQ(ks_cache_remove(c, j), 0);
	cJSON_Delete(j);
	ASSERT_EQ(ks_cache_by_status_id(c, "srv-2", &v), 0);
	ks_cache_free(c);
}

TEST(replace_delivers_the_difference)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	cJSON *items = cJSON_CreateArray();

	upsert(c, mk("ns", "keep", "1", NULL));
	upsert(c, mk("ns", "change", "1", NULL));
	upsert(c, mk("ns", "gone", "1", NULL));
	memset(&s, 0, sizeof(s));
	cJSON_AddItemToArray(items, mk("ns", "keep", "1", NULL));
	cJSON_AddItemToArray(items, mk("ns", "change", "5", NULL));
	cJSON_AddItemToArray(items, mk("ns", "new", "6", NULL));
	ks_cache_replace(c, items);
	cJSON_Delete(items);
	ASSERT_EQ(s.adds, 1);
	ASSERT_EQ(s.updates, 1);
	ASSERT_EQ(s.deletes, 1);
	ASSERT(ks_cache_get(c, "ns", "gone") == NULL);
	ASSERT(ks_cache_get(c, "ns", "new") != NULL);
	ASSERT_STR(ks_cache_get(c, "ns", "change")->resource_version, "5");
	ASSERT_EQ(ks_cache_len(c), 3);
	ks_cache_free(c);
}

TEST(cluster_scoped_keys)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	cJSON *j = cJSON_Parse("{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"1\"}}");

	upsert(c, j);
	ASSERT(ks_cache_get(c, NULL, "n1"));
	ASSERT_STR(ks_cache_get(c, "", "n1")->key, "n1");
	ks_cache_free(c);
}

TEST(uid_is_read_from_the_json_or_copied_when_escaped)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *o;
	char uid[64];

	upsert(c, cJSON_Parse("{\"metadata\":{\"name\":\"q\",\"uid\":\"a\\\"b\"}}"));
	upsert(c, cJSON_Parse("{\"metadata\":{\"name\":\"none\"}}"));
	upsert(c, mk("ns", "plain", "1", NULL));
	o = ks_cache_get(c, NULL, "q");
	ASSERT(o);
	ASSERT(o->uid_off > o->len); /* the text holds a\"b: the uid is a copy after it */
	ASSERT_STR(ks_cache_uid(o, uid, sizeof(uid)), "a\"b");
	o = ks_cache_get(c, NULL, "none");
	ASSERT_EQ(o->uid_len, 0);
	ASSERT_STR(ks_cache_uid(o, uid, sizeof(uid)), "");
	o = ks_cache_get(c, "ns", "plain");
	ASSERT(o->uid_off < o->len); /* no copy */
	ASSERT_STR(ks_cache_uid(o, uid, 3), "u-");
	ks_cache_free(c);
}

TEST(label_index_is_built_on_first_use_then_kept)
{
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *const *v;
	cJSON *j;

	upsert(c, mk("ns", "a", "1", ",\"labels\":{\"app\":\"x\"}"));
	upsert(c, mk("ns", "b", "1", ",\"labels\":{\"app\":\"x\"}"));
	upsert(c, mk("ns", "c", "1", ",\"labels\":{\"app\":\"x\"}"));
	/* Before the index exists: a changes label, c goes. */
	upsert(c, mk("ns", "a", "2", ",\"labels\":{\"app\":\"y\"}"));
	j = mk("ns", "c", "2", NULL);
	ASSERT_EQ(ks_cache_remove(c, j), 0);
	cJSON_Delete(j);
	ASSERT_EQ(ks_cache_by_label(c, "app", "x", &v), 1);
	ASSERT_STR(v[0]->key, "ns/b");
	ASSERT_EQ(ks_cache_by_label(c, "app", "y", &v), 1);
	/* After: it follows adds, label changes, plain updates and deletes. */
	upsert(c, mk("ns", "d", "1", ",\"labels\":{\"app\":\"x\"}"));
	upsert(c, mk("ns", "a", "3", ",\"labels\":{\"app\":\"x\"}"));
	upsert(c, mk("ns", "b", "4", ",\"labels\":{\"app\":\"x\"}"));
	ASSERT_EQ(ks_cache_by_label(c, "app", "x", &v), 3);
	for (size_t i = 0; i < 3; i++) {
		if (!strcmp(v[i]->key, "ns/b"))
			ASSERT_STR(v[i]->resource_version, "4");
	}
	ASSERT_EQ(ks_cache_by_label(c, "app", "y", &v), 0);
	j = mk("ns", "d", "2", NULL);
	ASSERT_EQ(ks_cache_remove(c, j), 0);
	cJSON_Delete(j);
	ASSERT_EQ(ks_cache_by_label(c, "app", "x", &v), 2);
	ks_cache_free(c);
}

/*
 * Index values are read back from the stored text when an object leaves: decoys in
 * .spec (a "metadata" with labels and owners, strings full of brackets and quotes)
 * must not be taken for the real ones.
 */
TEST(index_values_read_back_past_decoys)
{
	static const char *const tmpl =
		"{\"spec\":{\"s\":\"}{][\\\"\\\\\",\"metadata\":{\"namespace\":\"decoy\","
		"\"labels\":{\"app\":\"decoy\"},\"ownerReferences\":[{\"uid\":\"decoy\"}]},"
		"\"n\":[1,{\"a\":[]},true]},\"metadata\":{\"name\":\"t\",\"uid\":\"ut\","
		"\"resourceVersion\":\"%d\",\"annotations\":{\"labels\":\"no\"},\"namespace\":"
		"\"ns\",\"labels\":{\"app\":\"a\\\"b\",\"x\":\"{\"},\"ownerReferences\":"
		"[{\"uid\":\"o1\"},{\"uid\":\"o%d\"}]}}";
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *const *v;
	char *t;
	cJSON *j;

	ASSERT_EQ(ks_cache_by_label(c, "app", "a\"b", &v), 0); /* start the label index */
	for (int rv = 1; rv <= 3; rv++) {
		t = ks_xasprintf(tmpl, rv, rv < 3 ? 2 : 3); /* rv 2: same values; rv 3: not */
		upsert(c, cJSON_Parse(t));
		free(t);
		ASSERT_EQ(ks_cache_by_label(c, "app", "a\"b", &v), 1);
		ASSERT_EQ(atoi(v[0]->resource_version), rv);
		ASSERT_EQ(ks_cache_by_label(c, "x", "{", &v), 1);
		ASSERT_EQ(ks_cache_by_namespace(c, "ns", &v), 1);
		ASSERT_EQ(ks_cache_by_owner(c, "o1", &v), 1);
		ASSERT_EQ(ks_cache_by_owner(c, "o2", &v), rv < 3);
		ASSERT_EQ(ks_cache_by_owner(c, "o3", &v), rv == 3);
		ASSERT_EQ(ks_cache_by_namespace(c, "decoy", &v), 0);
		ASSERT_EQ(ks_cache_by_label(c, "app", "decoy", &v), 0);
		ASSERT_EQ(ks_cache_by_owner(c, "decoy", &v), 0);
	}
	ASSERT_EQ(s.adds, 1);
	ASSERT_EQ(s.updates, 2);
	j = mk("ns", "t", "9", NULL);
	ASSERT_EQ(ks_cache_remove(c, j), 0);
	cJSON_Delete(j);
	ASSERT_EQ(ks_cache_by_label(c, "app", "a\"b", &v), 0);
	ASSERT_EQ(ks_cache_by_label(c, "x", "{", &v), 0);
	ASSERT_EQ(ks_cache_by_namespace(c, "ns", &v), 0);
	ASSERT_EQ(ks_cache_by_owner(c, "o1", &v), 0);
	ASSERT_EQ(ks_cache_by_owner(c, "o3", &v), 0);
	ks_cache_free(c);
}

TEST(large_sets_grow_and_shrink)
{
	enum { N = 3000 };
	struct seen s;
	struct ks_cache *c = new_cache(&s);
	const struct ks_cache_obj *const *v;
	char name[32];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "o%d", i);
		upsert(c, mk("big", name, "1", ",\"ownerReferences\":[{\"uid\":\"p\"}]"));
	}
	ASSERT_EQ(ks_cache_by_namespace(c, "big", &v), N);
	ASSERT_EQ(ks_cache_by_owner(c, "p", &v), N);
	for (int i = 0; i < N - 5; i++) {
		cJSON *j;

		snprintf(name, sizeof(name), "o%d", i);
		j = mk("big", name, "2", NULL);
		ASSERT_EQ(ks_cache_remove(c, j), 0);
		cJSON_Delete(j);
	}
	ASSERT_EQ(ks_cache_by_owner(c, "p", &v), 5);
	for (int i = 0; i < 5; i++)
		ASSERT(!strncmp(v[i]->key, "big/o299", 8));
	ASSERT_EQ(ks_cache_len(c), 5);
	ks_cache_free(c);
}

int main(void)
{
	RUN(strips_managed_fields_and_last_applied);
	RUN(add_update_delete_in_order_and_same_rv_ignored);
	RUN(nameless_object_refused);
	RUN(indexes_follow_changes);
	RUN(status_id_index_follows_changes);
	RUN(replace_delivers_the_difference);
	RUN(cluster_scoped_keys);
	RUN(uid_is_read_from_the_json_or_copied_when_escaped);
	RUN(label_index_is_built_on_first_use_then_kept);
	RUN(index_values_read_back_past_decoys);
	RUN(large_sets_grow_and_shrink);
	TEST_MAIN();
}
