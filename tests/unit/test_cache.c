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

	upsert(c,
	       mk("ns", "a", "1",
		  ",\"managedFields\":[{\"manager\":\"kubectl\"}],\"annotations\":{"
		  "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\",\"keep\":\"x\"}"));
	o = ks_cache_get(c, "ns", "a");
	ASSERT(o);
	ASSERT_STR(o->json, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"uid\":\"u-a\","
			    "\"resourceVersion\":\"1\",\"annotations\":{\"keep\":\"x\"}}}");
	ASSERT_EQ(o->len, strlen(o->json));
	ASSERT_STR(o->uid, "u-a");
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

int main(void)
{
	RUN(strips_managed_fields_and_last_applied);
	RUN(add_update_delete_in_order_and_same_rv_ignored);
	RUN(nameless_object_refused);
	RUN(indexes_follow_changes);
	RUN(replace_delivers_the_difference);
	RUN(cluster_scoped_keys);
	TEST_MAIN();
}
