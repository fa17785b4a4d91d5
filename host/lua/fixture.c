/*
 * fixture.c: `kupenstack plugin test`: finding the plugin folders and their fixtures,
 * running each fixture's reconcile against the fake world, and TAP.
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

struct tally {
	unsigned n, failed;
};

/* A plugin folder: its source and its optional clouds.yaml. */
struct plugin_src {
	const char *dir;
	char *name; /* the plugin folder's base name, for fixture names */
	char *file; /* the plugin file's base name, for the sandbox's chunk name */
	char *src;
	size_t len;
	char *clouds_yaml;
};

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s && s[1] ? s + 1 : path;
}

/* The file dir/name parsed as YAML: every document (all) or exactly one. NULL and
 * *err when it is unreadable or not YAML; NULL and no *err when it does not exist. */
static cJSON *read_yaml(const char *dir, const char *name, bool all, char **err)
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
	x->obj = read_yaml(fdir, "object.yaml", false, err);
	if (!x->obj && !*err)
		*err = ks_xasprintf("%s has no object.yaml", fdir);
	n = x->obj ? scandir(cdir, &names, NULL, by_name) : 0;
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (!*err && len > 5 && strcmp(names[i]->d_name + len - 5, ".yaml") == 0) {
			docs = read_yaml(cdir, names[i]->d_name, true, err);
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
static void run(struct ks_fixture *x, const struct plugin_src *ps, uv_loop_t *loop,
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

static void fixture_free(struct ks_fixture *x)
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

/* Run the fixture in fdir; print its TAP line and diagnosis. */
static void fixture(const struct plugin_src *ps, const char *fdir, uv_loop_t *loop,
		    const char *stdlib, struct tally *t)
{
	struct ks_fixture x = { 0 };
	cJSON *http = NULL, *expected = NULL;
	char *err = NULL;
	const char *p, *nl;

	ks_buf_init(&x.diag);
	ks_fixture_fake_init(&x);
	if (load_objects(&x, fdir, &err))
		http = read_yaml(fdir, "http.yaml", false, &err);
	if (!err)
		expected = read_yaml(fdir, "expected.yaml", false, &err);
	if (!err && !cJSON_IsObject(expected))
		err = ks_xasprintf("%s/expected.yaml: missing, or not a mapping", fdir);
	if (!err && ks_fixture_load_http(&x, http, &err) == 0) {
		run(&x, ps, loop, stdlib);
		ks_fixture_http_leftover(&x);
		if (x.done)
			ks_fixture_check(&x, expected);
	}
	if (err)
		ks_fixture_diag(&x, "%s", err);
	t->n++;
	t->failed += x.diag.len > 0;
	printf("%s %u - %s/%s\n", x.diag.len ? "not ok" : "ok", t->n, ps->name, base(fdir));
	for (p = x.diag.data; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		printf("#   %.*s\n", (int)(nl - p), p);
	}
	fflush(stdout);
	free(err);
	cJSON_Delete(http);
	cJSON_Delete(expected);
	fixture_free(&x);
}

/* The plugin file of dir: file, or its only *.lua. NULL after saying why. */
static char *plugin_file(const char *dir, const char *file)
{
	struct dirent **names = NULL;
	char *found = NULL;
	int n, i, count = 0;

	if (file)
		return ks_xstrdup(file);
	n = scandir(dir, &names, NULL, by_name);
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (len > 4 && strcmp(names[i]->d_name + len - 4, ".lua") == 0 &&
		    !strstr(names[i]->d_name, "_spec.lua") && count++ == 0)
			found = ks_xasprintf("%s/%s", dir, names[i]->d_name);
		free(names[i]);
	}
	free(names);
	if (count != 1) {
		fprintf(stderr,
			"kupenstack plugin test: %s holds %d plugin files (*.lua); it "
			"needs exactly one, or --plugin FILE\n",
			dir, count);
		free(found);
		return NULL;
	}
	return found;
}

static char *read_clouds(const char *dir)
{
	static const char *const where[] = { "%s/clouds.yaml", "%s/fixtures/clouds.yaml" };
	char *path, *text = NULL;
	size_t i, len;
	int rc;

	for (i = 0; i < KS_ARRAY_SIZE(where) && !text; i++) {
		path = ks_xasprintf(where[i], dir);
		text = ks_read_file(path, &len, &rc);
		free(path);
	}
	return text;
}

/* Every fixture of the plugin folder dir. Returns false when it could not start. */
static bool plugin_dir(const char *dir, const struct ks_fixture_opts *o, uv_loop_t *loop,
		       struct tally *t)
{
	struct plugin_src ps = { .dir = dir };
	char *file = plugin_file(dir, o->plugin), *fdir = ks_xasprintf("%s/fixtures", dir), *f;
	struct dirent **names = NULL;
	int n, i, rc;

	if (!file)
		goto out;
	ps.src = ks_read_file(file, &ps.len, &rc);
	if (!ps.src) {
		fprintf(stderr, "kupenstack plugin test: %s: %s\n", file, strerror(-rc));
		goto out;
	}
	ps.name = ks_xstrdup(base(dir));
	ps.file = ks_xstrdup(base(file));
	ps.clouds_yaml = read_clouds(dir);
	n = scandir(fdir, &names, NULL, by_name);
	for (i = 0; i < n; i++) {
		f = ks_xasprintf("%s/%s", fdir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && is_dir(f))
			fixture(&ps, f, loop, o->stdlib_dir, t);
		free(f);
		free(names[i]);
	}
	free(names);
out:
	free(ps.src);
	free(ps.name);
	free(ps.file);
	free(ps.clouds_yaml);
	free(file);
	free(fdir);
	return ps.src != NULL;
}

static bool has_fixtures(const char *dir)
{
	char *f = ks_xasprintf("%s/fixtures", dir);
	bool yes = is_dir(f);

	free(f);
	return yes;
}

int ks_fixture_run(const char *dir, const struct ks_fixture_opts *o)
{
	struct tally t = { 0 };
	struct dirent **names = NULL;
	bool ok = true;
	uv_loop_t loop;
	int n = 0, i;
	char *sub;

	uv_loop_init(&loop);
	if (has_fixtures(dir)) {
		ok = plugin_dir(dir, o, &loop, &t);
	} else {
		n = scandir(dir, &names, NULL, by_name);
		for (i = 0; i < n; i++) {
			sub = ks_xasprintf("%s/%s", dir, names[i]->d_name);
			if (names[i]->d_name[0] != '.' && has_fixtures(sub))
				ok &= plugin_dir(sub, o, &loop, &t);
			free(sub);
			free(names[i]);
		}
		free(names);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (t.n == 0) {
		fprintf(stderr,
			"kupenstack plugin test: no fixtures under %s (DIR/fixtures/NAME/, "
			"or DIR/PLUGIN/fixtures/NAME/)\n",
			dir);
		return 2;
	}
	printf("1..%u\n%u passed, %u failed\n", t.n, t.n - t.failed, t.failed);
	return t.failed || !ok ? 1 : 0;
}
