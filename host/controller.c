/*
 * controller.c: one kind's controller: cache handlers, the queue, resync, and the
 * wiring of owned and watched kinds. The flow of one reconcile is in reconcile.c.
 */
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "controller_impl.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "map.h"

struct source {
	struct ks_controller *c;
	struct ks_cache *cache;
	struct ks_cache_handler h;
	bool own;
	ks_controller_map_cb map;
	void *data;
	struct source *next;
};

/* Is name one of the comma-separated names of list ("p*": any name starting with p)? */
static bool name_listed(const char *list, const char *name)
{
	size_t n, len = strlen(name);

	for (; *list; list += n + (list[n] == ',')) {
		n = strcspn(list, ",");
		if (n && list[n - 1] == '*' ? len >= n - 1 && !memcmp(name, list, n - 1)
					    : n == len && !memcmp(name, list, n))
			return true;
	}
	return false;
}

bool ks_controller_selects(const struct ks_controller *c, const cJSON *obj)
{
	const cJSON *labels = ks_json_path(obj, "metadata.labels");
	const char *v, *name;

	if (c->skip_names) {
		name = ks_json_str(obj, "metadata.name");
		if (name && name_listed(c->skip_names, name))
			return false;
	}
	if (!c->selector_key)
		return true;
	v = cJSON_GetStringValue(cJSON_GetObjectItem(labels, c->selector_key));
	if (c->selector_value && c->selector_value[0] == '!')
		return !v || strcmp(v, c->selector_value + 1) != 0;
	return v && (!c->selector_value || strcmp(v, c->selector_value) == 0);
}

const char *ks_controller_name(const struct ks_controller *c)
{
	return c->name;
}

struct ks_cache *ks_controller_cache(struct ks_controller *c)
{
	return c->cache;
}

struct ks_queue *ks_controller_queue(struct ks_controller *c)
{
	return c->queue;
}

struct ks_events *ks_controller_events(struct ks_controller *c)
{
	return c->events;
}

/* With --namespace N, the Namespace kind is limited to N too. */
static bool in_scope(const struct ks_controller *c, const char *key)
{
	const char *ns = ks_manager_namespace(c->manager);

	return !ns || c->res.namespaced || strcmp(c->resource, "namespaces") != 0 ||
	       strcmp(key, ns) == 0;
}

void ks_controller_enqueue(struct ks_controller *c, const char *key, enum ks_queue_prio prio)
{
	if (c->started && in_scope(c, key))
		ks_queue_add(c->queue, key, prio);
}

static void enqueue_one(const struct ks_cache_obj *o, void *data)
{
	ks_controller_enqueue(data, o->key, KS_QUEUE_LOW);
}

void ks_controller_enqueue_all(struct ks_controller *c, enum ks_queue_prio prio)
{
	(void)prio;
	ks_cache_foreach(c->cache, enqueue_one, c);
}

/* The primary kind's adds enter at low priority until its first LIST is in. */
static void on_add(const struct ks_cache_obj *o, void *data)
{
	struct ks_controller *c = data;

	ks_controller_enqueue(
		c, o->key, ks_manager_synced(c->manager, &c->res) ? KS_QUEUE_HIGH : KS_QUEUE_LOW);
}

/* Does the update change more than .status and metadata.resourceVersion? */
static bool worth_reconciling(const struct ks_cache_obj *old, const struct ks_cache_obj *o)
{
	cJSON *a, *b;
	bool differ;

	if (old->generation != o->generation)
		return true;
	a = ks_json_parse(old->json, old->len);
	b = ks_json_parse(o->json, o->len);
	if (!a || !b) {
		differ = true;
		goto out;
	}
	cJSON_DeleteItemFromObject(a, "status");
	cJSON_DeleteItemFromObject(b, "status");
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(a, "metadata"), "resourceVersion");
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(b, "metadata"), "resourceVersion");
	differ = !ks_json_equal(a, b);
out:
	cJSON_Delete(a);
	cJSON_Delete(b);
	return differ;
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	if (worth_reconciling(old, o))
		ks_controller_enqueue(data, o->key, KS_QUEUE_HIGH);
}

static void on_delete(const struct ks_cache_obj *o, void *data)
{
	(void)o;
	(void)data; /* gone: a finalizer would have held it; nothing left to do */
}

/* A child changed: enqueue each owner of our kind named in its ownerReferences. */
static void owner_changed(const struct ks_cache_obj *o, struct ks_controller *c)
{
	cJSON *v = ks_json_parse(o->json, o->len);
	const cJSON *refs = ks_json_path(v, "metadata.ownerReferences"), *r;
	const char *ns = ks_json_str(v, "metadata.namespace");

	cJSON_ArrayForEach(r, refs)
	{
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(r, "kind"));
		const char *api = cJSON_GetStringValue(cJSON_GetObjectItem(r, "apiVersion"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(r, "name"));
		char *key;

		if (!kind || !api || !name || strcmp(kind, c->kind) || strcmp(api, c->api_version))
			continue;
		key = ns ? ks_xasprintf("%s/%s", ns, name) : ks_xstrdup(name);
		ks_controller_enqueue(c, key, KS_QUEUE_HIGH);
		free(key);
	}
	cJSON_Delete(v);
}

static void source_event(const struct ks_cache_obj *o, struct source *s)
{
	if (!s->c->started)
		return;
	if (s->own)
		owner_changed(o, s->c);
	else
		s->map(s->c, o, s->data);
}

static void src_add(const struct ks_cache_obj *o, void *data)
{
	source_event(o, data);
}

/* An owned child's status counts too: its owner reports it (an InstanceSet its members'
 * Available), as a ReplicaSet wakes on its pods' status. */
static void src_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	if (((struct source *)data)->own || worth_reconciling(old, o))
		source_event(o, data);
}

static void src_delete(const struct ks_cache_obj *o, void *data)
{
	source_event(o, data);
}

static void add_source(struct ks_controller *c, const struct ks_kube_res *res, bool own,
		       ks_controller_map_cb map, void *data)
{
	struct source *s = ks_xcalloc(1, sizeof(*s));

	s->c = c;
	s->own = own;
	s->map = map;
	s->data = data;
	s->cache = ks_manager_cache(c->manager, res);
	s->h = (struct ks_cache_handler){ src_add, src_update, src_delete, s };
	ks_require(ks_cache_add_handler(s->cache, &s->h) == 0);
	s->next = c->sources;
	c->sources = s;
}

void ks_controller_own(struct ks_controller *c, const struct ks_kube_res *res)
{
	add_source(c, res, true, NULL, NULL);
}

void ks_controller_watch(struct ks_controller *c, const struct ks_kube_res *res,
			 ks_controller_map_cb map, void *data)
{
	add_source(c, res, false, map, data);
}

static void resync_fired(uv_timer_t *t)
{
	struct ks_controller *c = t->data;

	ks_debug("resync", "controller=%s objects=%zu", c->name, ks_cache_len(c->cache));
	ks_controller_enqueue_all(c, KS_QUEUE_LOW);
	uv_timer_start(&c->resync_timer, resync_fired,
		       (uint64_t)(c->resync * (0.9 + 0.2 * ks_rand01()) * 1000), 0);
}

struct ks_controller *ks_controller_new(uv_loop_t *loop, struct ks_kube *kube, struct ks_manager *m,
					const struct ks_controller_opts *o)
{
	struct ks_controller *c = ks_xcalloc(1, sizeof(*c));

	ks_require(o->reconcile && o->name && o->kind && o->api_version);
	c->loop = loop;
	c->kube = kube;
	c->manager = m;
	c->name = ks_xstrdup(o->name);
	c->group = ks_xstrdup(o->res.group ? o->res.group : "");
	c->version = ks_xstrdup(o->res.version);
	c->resource = ks_xstrdup(o->res.resource);
	c->res = (struct ks_kube_res){ c->group, c->version, c->resource, o->res.namespaced };
	c->api_version = ks_xstrdup(o->api_version);
	c->kind = ks_xstrdup(o->kind);
	c->finalizer = o->finalizer ? ks_xstrdup(o->finalizer) : NULL;
	c->selector_key = o->selector_key ? ks_xstrdup(o->selector_key) : NULL;
	c->selector_value = o->selector_value ? ks_xstrdup(o->selector_value) : NULL;
	c->skip_names = o->skip_names ? ks_xstrdup(o->skip_names) : NULL;
	c->resync = o->resync;
	c->reconcile = o->reconcile;
	c->data = o->data;
	c->events = o->events;
	c->metrics = o->metrics;
	c->dry_run = o->dry_run;
	c->queue = ks_queue_new(loop, &(struct ks_queue_opts){
					      .name = c->name,
					      .concurrency = o->concurrency,
					      .work = ks_controller_work,
					      .data = c,
					      .metrics = o->metrics,
					      .qps = o->qps,
				      });
	c->cache = ks_manager_cache(m, &c->res);
	c->written = ks_map_new(0);
	uv_timer_init(loop, &c->resync_timer);
	c->resync_timer.data = c;
	if (c->metrics)
		ks_metrics_controller_init(c->metrics, c->name);
	return c;
}

void ks_controller_start(struct ks_controller *c)
{
	if (c->started)
		return;
	c->started = true;
	c->h = (struct ks_cache_handler){ on_add, on_update, on_delete, c };
	ks_require(ks_cache_add_handler(c->cache, &c->h) == 0);
	ks_cache_foreach(c->cache, enqueue_one, c);
	if (c->resync > 0)
		uv_timer_start(&c->resync_timer, resync_fired,
			       (uint64_t)(c->resync * (0.9 + 0.2 * ks_rand01()) * 1000), 0);
	ks_info("controller started", "controller=%s resource=%s.%s finalizer=%s", c->name,
		c->resource, c->group, c->finalizer ? c->finalizer : "none");
}

static void queue_drained(struct ks_queue *q, void *data)
{
	struct ks_controller *c = data;

	(void)q;
	c->drained_done = true;
	if (c->drained)
		c->drained(c->drained_data);
}

void ks_controller_stop(struct ks_controller *c, void (*drained)(void *data), void *data)
{
	struct source *s;

	c->drained = drained;
	c->drained_data = data;
	uv_timer_stop(&c->resync_timer);
	if (c->started)
		ks_cache_remove_handler(c->cache, &c->h);
	for (s = c->sources; s; s = s->next)
		ks_cache_remove_handler(s->cache, &s->h);
	c->started = false;
	ks_queue_shut_down(c->queue, queue_drained, c);
}

static void timer_closed(uv_handle_t *h)
{
	struct ks_controller *c = h->data;

	ks_queue_free(c->queue);
	ks_map_free(c->written);
	free(c->name);
	free(c->group);
	free(c->version);
	free(c->resource);
	free(c->api_version);
	free(c->kind);
	free(c->finalizer);
	free(c->selector_key);
	free(c->selector_value);
	free(c->skip_names);
	free(c);
}

void ks_controller_free(struct ks_controller *c)
{
	struct source *s, *next;

	if (!c)
		return;
	/* c itself goes when its timer is closed; a drain its queue reports meanwhile must
	 * not call back (the loader frees a binding whose drain timed out at once). */
	c->drained = NULL;
	if (c->started)
		ks_cache_remove_handler(c->cache, &c->h);
	for (s = c->sources; s; s = next) {
		next = s->next;
		ks_cache_remove_handler(s->cache, &s->h);
		free(s);
	}
	uv_close((uv_handle_t *)&c->resync_timer, timer_closed);
}

void ks_controller_abandon(struct ks_controller *c)
{
	c->abandoned = true;
}

void ks_controller_set_reconcile(struct ks_controller *c, ks_reconcile_cb cb, void *data)
{
	c->reconcile = cb;
	c->data = data;
}
