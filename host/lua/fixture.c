/*
 * fixture.c: one fixture of `kupenstack plugin test`: its files read, its reconcile run
 * against the fake world. fixture_dir.c finds the fixtures and prints TAP.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "ks.h"
#include "lua/bind.h"
#include "lua/fixture.h"
#include "lua/fixture_impl.h"
#include "status.h"
#include "yaml.h"

cJSON *ks_fixture_read_yaml(const char *dir, const char *name, bool all, char **err)
{
	char *path = ks_xasprintf("%s/%s", dir, name), *text, *why = NULL;
	size_t len;
	cJSON *doc = NULL;
	int rc;

	text = ks_read_file(path, &len, &rc);
	if (!text) {
		if (rc != -ENOENT)
			*err = ks_xasprintf("%s: %s", path, strerror(-rc));
		goto out;
	}
	doc = all ? ks_yaml_parse_all(text, len, &why) : ks_yaml_parse(text, len, &why);
	if (!doc)
		*err = ks_xasprintf("%s: %s", path, why);
	free(why);
	free(text);
out:
	free(path);
	return doc;
}

bool ks_fixture_res_of(const struct ks_fixture *x, const cJSON *obj, char *group, size_t gcap,
		       char *version, size_t vcap, char *resource, size_t rcap)
{
	const char *api = ks_json_str(obj, "apiVersion"), *kind = ks_json_str(obj, "kind");
	const char *slash = api ? strchr(api, '/') : NULL;
	size_t i;

	if (!api || !kind)
		return false;
	snprintf(group, gcap, "%.*s", slash ? (int)(slash - api) : 0, api);
	snprintf(version, vcap, "%s", slash ? slash + 1 : api);
	for (i = 0; i < x->ncaches; i++) {
		const struct ks_plugin_kind *k = x->caches[i].kind;
		if (strcmp(k->group, group) == 0 && strcmp(k->version, version) == 0 &&
		    strcmp(k->kind, kind) == 0) {
			snprintf(resource, rcap, "%s", k->resource);
			return true;
		}
	}
	ks_lua_kube_plural(kind, resource, rcap);
	return true;
}

static struct ks_cache *cache_for(void *data, const struct ks_kube_res *res)
{
	struct ks_fixture *x = data;
	size_t i;

	for (i = 0; i < x->ncaches; i++) {
		const struct ks_plugin_kind *k = x->caches[i].kind;
		if (strcmp(k->group, res->group ? res->group : "") == 0 &&
		    strcmp(k->version, res->version) == 0 &&
		    strcmp(k->resource, res->resource) == 0)
			return x->caches[i].cache;
	}
	return NULL;
}

static void add_kind(struct ks_fixture *x, const struct ks_plugin_kind *k)
{
	struct ks_kube_res r = k->res;

	if (cache_for(x, &r))
		return;
	x->caches[x->ncaches].kind = k;
	x->caches[x->ncaches++].cache = ks_cache_new();
}

/* A cache per kind the plugin declares, each holding the fixture's objects of its kind. */
static void fill_caches(struct ks_fixture *x)
{
	const struct ks_plugin *p = x->plugin;
	char g[128], v[64], r[128];
	struct ks_cache *c;
	const cJSON *o;
	size_t i;

	add_kind(x, &p->self);
	for (i = 0; i < p->nowns; i++)
		add_kind(x, &p->owns[i]);
	for (i = 0; i < p->nwatches; i++)
		add_kind(x, &p->watches[i]);
	cJSON_ArrayForEach(o, x->objects)
	{
		if (!ks_fixture_res_of(x, o, g, sizeof(g), v, sizeof(v), r, sizeof(r)))
			continue;
		c = cache_for(x, &(struct ks_kube_res){ g, v, r, true });
		if (c) {
			cJSON *copy = cJSON_Duplicate(o, true);
			ks_cache_upsert(c, copy);
			cJSON_Delete(copy);
		}
	}
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* object.yaml and every document of cache/ *.yaml into x->objects. */
static bool load_objects(struct ks_fixture *x, const char *fdir, char **err)
{
	char *cdir = ks_xasprintf("%s/cache", fdir);
	struct dirent **names = NULL;
	cJSON *docs, *d;
	int n, i;

	x->objects = cJSON_CreateArray();
	x->obj = ks_fixture_read_yaml(fdir, "object.yaml", false, err);
	if (!x->obj && !*err)
		*err = ks_xasprintf("%s has no object.yaml", fdir);
	n = x->obj ? scandir(cdir, &names, NULL, by_name) : 0;
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (!*err && len > 5 && strcmp(names[i]->d_name + len - 5, ".yaml") == 0) {
			docs = ks_fixture_read_yaml(cdir, names[i]->d_name, true, err);
			while (docs && (d = cJSON_DetachItemFromArray(docs, 0)) != NULL)
				cJSON_AddItemToArray(x->objects, d);
			cJSON_Delete(docs);
		}
		free(names[i]);
	}
	free(names);
	free(cdir);
	if (x->obj)
		cJSON_AddItemToArray(x->objects, cJSON_Duplicate(x->obj, true));
	return !*err;
}

static void reconciled(const struct ks_outcome *o, void *data)
{
	struct ks_fixture *x = data;
	const cJSON *st = cJSON_GetObjectItem(x->obj, "status");
	cJSON *next = NULL, *ev;

	x->done = true;
	x->terminal = o->terminal;
	x->requeue_after = o->requeue_after;
	x->backoff = o->backoff;
	if (o->error) {
		x->error = ks_xstrdup(o->error);
		x->reason = ks_xstrdup(o->reason     ? o->reason
				       : o->terminal ? "Terminal"
						     : "Transient");
		/* The Event the host records on a failure. */
		ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "type", "Warning");
		cJSON_AddStringToObject(ev, "reason",
					o->reason     ? o->reason
					: x->deleting ? "FinalizeFailed"
						      : "ReconcileFailed");
		cJSON_AddStringToObject(ev, "message", o->error);
		cJSON_AddItemToArray(x->events, ev);
	}
	if (x->deleting && !o->error && o->requeue_after <= 0)
		x->finalizer_removed = true; /* the host removes it and writes no status */
	else
		next = ks_status_next(x->obj, o, KS_FIXTURE_NOW);
	x->status_written = next != NULL;
	x->status = next ? next : st ? cJSON_Duplicate(st, true) : cJSON_CreateObject();
}

/* Would the host call the plugin for x->obj? Puts the finalizer on as the host does
 * before the first reconcile. */
static bool host_would_call(struct ks_fixture *x)
{
	const struct ks_plugin *p = x->plugin;
	cJSON *meta = cJSON_GetObjectItem(x->obj, "metadata"), *list, *f;
	bool has = false;

	list = cJSON_GetObjectItem(meta, "finalizers");
	cJSON_ArrayForEach(f, list)
	{
		has |= p->finalizer && cJSON_IsString(f) &&
		       strcmp(f->valuestring, p->finalizer) == 0;
	}
	x->deleting = ks_json_str(x->obj, "metadata.deletionTimestamp") != NULL;
	if (p->selector_key && !has) {
		const char *l = cJSON_GetStringValue(
			cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "labels"), p->selector_key));
		if (!l || strcmp(l, p->selector_value) != 0) {
			ks_fixture_diag(x,
					"object.yaml lacks the label %s=%s of the plugin's "
					"selector: the host would not reconcile it",
					p->selector_key, p->selector_value);
			return false;
		}
	}
	if (x->deleting && !has) {
		ks_fixture_diag(x,
				"object.yaml is being deleted and lacks the plugin's finalizer "
				"(%s): the host would not call finalize",
				p->finalizer ? p->finalizer : "it has none");
		return false;
	}
	if (p->finalizer && !has) {
		if (!list)
			list = cJSON_AddArrayToObject(meta, "finalizers");
		cJSON_AddItemToArray(list, cJSON_CreateString(p->finalizer));
	}
	return true;
}

static char *key_of(const cJSON *obj)
{
	const char *ns = ks_json_str(obj, "metadata.namespace");
	const char *name = ks_json_str(obj, "metadata.name");

	return ns ? ks_xasprintf("%s/%s", ns, name ? name : "") : ks_xstrdup(name ? name : "");
}

/* Load the plugin for x, run the reconcile to its end on loop. */
static void run(struct ks_fixture *x, const struct ks_fixture_src *ps, uv_loop_t *loop,
		const char *stdlib)
{
	struct ks_lua_host host = {
		.loop = loop,
		.stdlib_dir = stdlib,
		.cache_for = cache_for,
		.cache_data = x,
		.clouds_yaml = ps->clouds_yaml,
		.cluster = "kupenstack",
		.fake = &x->fake,
	};
	char *err = NULL, *key;

	x->plugin = ks_plugin_load(&host, ps->file, ps->src, ps->len, &err);
	if (!x->plugin) {
		ks_fixture_diag(x, "the plugin does not load: %s", err);
		free(err);
		return;
	}
	if (ks_plugin_configure(x->plugin, ps->config, &err) != 0) {
		ks_fixture_diag(x, "config.yaml: %s", err);
		free(err);
		ks_plugin_free(x->plugin, "the fixture is done");
		x->plugin = NULL;
		uv_run(loop, UV_RUN_DEFAULT);
		return;
	}
	fill_caches(x);
	if (host_would_call(x)) {
		key = key_of(x->obj);
		ks_plugin_run(x->plugin, NULL, x->obj, key, x->deleting, reconciled, x);
		free(key);
		while (!x->done && uv_run(loop, UV_RUN_ONCE))
			;
		if (!x->done)
			ks_fixture_diag(x, "the reconcile never finished");
	}
	ks_plugin_free(x->plugin, "the fixture is done");
	x->plugin = NULL;
	uv_run(loop, UV_RUN_DEFAULT); /* the closed handles' callbacks */
}

void ks_fixture_free(struct ks_fixture *x)
{
	size_t i;

	for (i = 0; i < x->ncaches; i++)
		ks_cache_free(x->caches[i].cache);
	ks_fixture_calls_free(x);
	cJSON_Delete(x->obj);
	cJSON_Delete(x->objects);
	cJSON_Delete(x->writes);
	cJSON_Delete(x->events);
	cJSON_Delete(x->status);
	free(x->error);
	free(x->reason);
	ks_buf_deinit(&x->diag);
}

void ks_fixture_eval(struct ks_fixture *x, const struct ks_fixture_src *ps, const char *fdir,
		     uv_loop_t *loop, const char *stdlib)
{
	cJSON *http = NULL, *expected = NULL;
	char *err = NULL;

	ks_buf_init(&x->diag);
	ks_fixture_fake_init(x);
	if (load_objects(x, fdir, &err))
		http = ks_fixture_read_yaml(fdir, "http.yaml", false, &err);
	if (!err)
		expected = ks_fixture_read_yaml(fdir, "expected.yaml", false, &err);
	if (!err && !cJSON_IsObject(expected))
		err = ks_xasprintf("%s/expected.yaml: missing, or not a mapping", fdir);
	if (!err && ks_fixture_load_http(x, http, &err) == 0) {
		run(x, ps, loop, stdlib);
		ks_fixture_http_leftover(x);
		if (x->done)
			ks_fixture_check(x, expected);
	}
	if (err)
		ks_fixture_diag(x, "%s", err);
	free(err);
	cJSON_Delete(http);
	cJSON_Delete(expected);
}
