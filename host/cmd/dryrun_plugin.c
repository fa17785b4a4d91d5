/*
 * dryrun_plugin.c: `kupenstack plugin run FILE --dry-run [--once]`: the plugin's reads go to the
 * cluster and the cloud, its writes and the host's are printed (dryrun.h). Without --once
 * the real controller runs with its dry_run flag; with --once each object of the kind is
 * reconciled once, in key order, through the same steps (finalizer, reconcile or
 * finalize, status) and the process exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dryrun.h"
#include "http.h"
#include "json.h"
#include "ks.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "cmd/dryrun_plugin.h"
#include "lua/fake.h"
#include "plugin/plugin.h"
#include "manager.h"

struct dry {
	struct ks_lua_fake fake;
	const struct ks_lua_dryrun_opts *o;
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t timer; /* once: waits for the caches, then steps through the keys */
	struct ks_http *http;
	struct ks_kube *kube;
	struct ks_manager *manager;
	struct ks_plugin *plugin;
	struct ks_controller *ctrl; /* without --once */
	struct ks_plugin_watch watches[KS_PLUGIN_MAX_KINDS];
	char **keys; /* once: the keys to reconcile, sorted */
	size_t nkeys, next;
	cJSON *obj; /* once: the object being reconciled */
	bool deleting, busy, stopping;
	unsigned done, failed;
	int status;
};

static void print_http(const struct ks_lua_fake_http *req)
{
	cJSON *doc = cJSON_CreateObject(), *body;

	cJSON_AddStringToObject(doc, "dryRun", "HTTP");
	cJSON_AddStringToObject(doc, "method", req->method);
	cJSON_AddStringToObject(doc, "url", req->url);
	if (req->body) {
		body = ks_json_parse(req->body, req->body_len);
		if (!body) {
			char *text = ks_xstrndup(req->body, req->body_len);
			body = cJSON_CreateString(text);
			free(text);
		}
		cJSON_AddItemToObject(doc, "body", body);
	}
	ks_dryrun_print(doc);
}

static bool fake_http(struct ks_lua_fake *f, const struct ks_lua_fake_http *req,
		      struct ks_lua_fake_reply *out)
{
	(void)f;
	if (strcasecmp(req->method, "GET") == 0 || strcasecmp(req->method, "HEAD") == 0 ||
	    req->changes_nothing)
		return false;
	print_http(req);
	ks_lua_fake_reply_fail(out, "DryRun", "dry-run: %s %s not sent", req->method, req->url);
	return true;
}

/* The cached object of res ns/name, or NULL. */
static cJSON *cached(struct dry *d, const struct ks_kube_res *res, const char *ns, const char *name)
{
	struct ks_cache *c = ks_manager_find(d->manager, res);
	const struct ks_cache_obj *o = c && name ? ks_cache_get(c, ns, name) : NULL;

	return o ? ks_json_parse(o->json, o->len) : NULL;
}

static bool fake_kube(struct ks_lua_fake *f, const struct ks_lua_fake_kube *k,
		      struct ks_lua_fake_reply *out)
{
	struct dry *d = KS_CONTAINER_OF(f, struct dry, fake);
	char verb[16];
	size_t i;

	if (strcmp(k->verb, "get") == 0 || strcmp(k->verb, "list") == 0)
		return false; /* reads go to the API server */
	for (i = 0; i < sizeof(verb) - 1 && k->verb[i]; i++)
		verb[i] = (char)(k->verb[i] - 'a' + 'A');
	verb[i] = '\0';
	ks_dryrun_write(verb, k->res, k->ns, k->name, k->sub, k->patch_type, k->body);
	out->status = 200;
	if (strcmp(k->verb, "patch") == 0)
		out->json = cached(d, k->res, k->ns, k->name);
	if (!out->json && k->body && strcmp(k->verb, "delete") != 0)
		out->json = cJSON_Duplicate(k->body, true);
	return true;
}

static void print_event(const cJSON *obj, const char *type, const char *reason, const char *message)
{
	cJSON *doc = cJSON_CreateObject();
	const char *ns = ks_json_str(obj, "metadata.namespace");

	cJSON_AddStringToObject(doc, "dryRun", "EVENT");
	cJSON_AddStringToObject(doc, "kind",
				ks_json_str(obj, "kind") ? ks_json_str(obj, "kind") : "");
	if (ns)
		cJSON_AddStringToObject(doc, "namespace", ns);
	cJSON_AddStringToObject(
		doc, "name",
		ks_json_str(obj, "metadata.name") ? ks_json_str(obj, "metadata.name") : "");
	cJSON_AddStringToObject(doc, "type", type);
	cJSON_AddStringToObject(doc, "reason", reason);
	cJSON_AddStringToObject(doc, "message", message);
	ks_dryrun_print(doc);
}

static void fake_event(struct ks_lua_fake *f, const cJSON *obj, const char *type,
		       const char *reason, const char *message)
{
	(void)f;
	print_event(obj, type, reason, message);
}

/* ---- --once: each object once, as reconcile.c would ---------------------------------- */

static void tick(uv_timer_t *t);

/* The JSON patch that adds (or removes, at index) our finalizer, guarded as the host's. */
static cJSON *finalizer_patch(const cJSON *obj, const char *finalizer, int index)
{
	cJSON *ops = cJSON_CreateArray(), *test = cJSON_CreateObject(), *op = cJSON_CreateObject();
	const char *rv = ks_json_str(obj, "metadata.resourceVersion");
	char path[64];

	cJSON_AddStringToObject(test, "op", "test");
	cJSON_AddStringToObject(test, "path", "/metadata/resourceVersion");
	cJSON_AddStringToObject(test, "value", rv ? rv : "");
	cJSON_AddItemToArray(ops, test);
	if (index >= 0) {
		snprintf(path, sizeof(path), "/metadata/finalizers/%d", index);
		cJSON_AddStringToObject(op, "op", "remove");
		cJSON_AddStringToObject(op, "path", path);
	} else if (ks_json_path(obj, "metadata.finalizers")) {
		cJSON_AddStringToObject(op, "op", "add");
		cJSON_AddStringToObject(op, "path", "/metadata/finalizers/-");
		cJSON_AddStringToObject(op, "value", finalizer);
	} else {
		cJSON_AddStringToObject(op, "op", "add");
		cJSON_AddStringToObject(op, "path", "/metadata/finalizers");
		cJSON_AddItemToObject(op, "value", cJSON_CreateStringArray(&finalizer, 1));
	}
	cJSON_AddItemToArray(ops, op);
	return ops;
}

static void print_patch(struct dry *d, const char *sub, const char *type, cJSON *patch)
{
	ks_dryrun_write("PATCH", &d->plugin->self.res, ks_json_str(d->obj, "metadata.namespace"),
			ks_json_str(d->obj, "metadata.name"), sub, type, patch);
	cJSON_Delete(patch);
}

static void once_done(const struct ks_outcome *o, void *data)
{
	struct dry *d = data;
	const char *fin = d->plugin ? d->plugin->finalizer : NULL;
	const cJSON *f;
	char now[32];
	cJSON *next;
	int i = 0;

	d->busy = false;
	if (!d->stopping) {
		d->done++;
		if (o->error) {
			d->failed++;
			ks_warn("dry run: the reconcile failed", "key=%s error=%s",
				d->keys[d->next - 1], ks_logq(o->error));
			print_event(d->obj, "Warning",
				    o->reason	  ? o->reason
				    : d->deleting ? "FinalizeFailed"
						  : "ReconcileFailed",
				    o->error);
		}
		if (d->deleting && !o->error && o->requeue_after <= 0 && fin) {
			cJSON_ArrayForEach(f, ks_json_path(d->obj, "metadata.finalizers"))
			{
				if (cJSON_IsString(f) && strcmp(f->valuestring, fin) == 0)
					break;
				i++;
			}
			print_patch(d, NULL, "json", finalizer_patch(d->obj, fin, i));
		} else {
			ks_status_now(now);
			next = ks_status_next(d->obj, o, now);
			if (next)
				print_patch(d, "status", "merge", ks_status_patch(d->obj, next));
			else
				ks_info("dry run: the status is unchanged", "key=%s",
					d->keys[d->next - 1]);
		}
		uv_timer_start(&d->timer, tick, 0, 0);
	}
	cJSON_Delete(d->obj);
	d->obj = NULL;
}

/* Would the host call the plugin for d->obj? Prints the finalizer patch it would make
 * first, and puts the finalizer on our copy. */
static bool host_would_call(struct dry *d, const char *key)
{
	const struct ks_plugin *p = d->plugin;
	cJSON *meta = cJSON_GetObjectItem(d->obj, "metadata");
	cJSON *list = cJSON_GetObjectItem(meta, "finalizers"), *f;
	const char *label;
	bool has = false;

	cJSON_ArrayForEach(f, list)
	{
		has |= p->finalizer && cJSON_IsString(f) &&
		       strcmp(f->valuestring, p->finalizer) == 0;
	}
	label = p->selector_key ? cJSON_GetStringValue(cJSON_GetObjectItem(
					  cJSON_GetObjectItem(meta, "labels"), p->selector_key))
				: NULL;
	d->deleting = ks_json_str(d->obj, "metadata.deletionTimestamp") != NULL;
	if ((p->selector_key && !has && (!label || strcmp(label, p->selector_value) != 0)) ||
	    (d->deleting && !has)) {
		ks_info("dry run: not the plugin's to reconcile", "key=%s", key);
		return false;
	}
	if (p->finalizer && !has) {
		print_patch(d, NULL, "json", finalizer_patch(d->obj, p->finalizer, -1));
		if (!list)
			list = cJSON_AddArrayToObject(meta, "finalizers");
		cJSON_AddItemToArray(list, cJSON_CreateString(p->finalizer));
	}
	return true;
}

static void reconcile_one(struct dry *d, const char *key)
{
	struct ks_cache *c = ks_manager_find(d->manager, &d->plugin->self.res);
	const char *slash = strchr(key, '/');
	char ns[256];
	const struct ks_cache_obj *o;

	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - key) : 0, key);
	o = ks_cache_get(c, slash ? ns : NULL, slash ? slash + 1 : key);
	d->obj = o ? ks_json_parse(o->json, o->len) : NULL;
	if (!d->obj || !host_would_call(d, key)) {
		cJSON_Delete(d->obj);
		d->obj = NULL;
		uv_timer_start(&d->timer, tick, 0, 0);
		return;
	}
	d->busy = true;
	ks_plugin_run(d->plugin, NULL, d->obj, key, d->deleting, once_done, d);
}

static void collect(const struct ks_cache_obj *o, void *data)
{
	struct dry *d = data;

	d->keys[d->nkeys++] = ks_xstrdup(o->key);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void stop(struct dry *d, int status);
static void start_controller(struct dry *d);

static void tick(uv_timer_t *t)
{
	struct dry *d = t->data;
	struct ks_cache *c;
	char why[256];

	if (d->stopping || d->busy)
		return;
	if (!d->keys) {
		if (!ks_manager_all_synced(d->manager, why, sizeof(why))) {
			uv_timer_start(&d->timer, tick, 100, 0);
			return;
		}
		if (!d->o->once) {
			/* After the sync: a plugin's first kube.get sees every kind it reads. */
			start_controller(d);
			return;
		}
		c = ks_manager_find(d->manager, &d->plugin->self.res);
		d->keys = ks_xcalloc(ks_cache_len(c) + 1, sizeof(*d->keys));
		ks_cache_foreach(c, collect, d);
		qsort(d->keys, d->nkeys, sizeof(*d->keys), cmp_key);
		ks_info("dry run: the caches are synced", "objects=%zu", d->nkeys);
	}
	if (d->next == d->nkeys) {
		ks_info("dry run: done", "reconciled=%u failed=%u", d->done, d->failed);
		stop(d, d->failed ? 1 : 0);
		return;
	}
	reconcile_one(d, d->keys[d->next++]);
}

/* ---- setting up and taking down ---------------------------------------------------- */

static void drained(void *data)
{
	struct dry *d = data;
	size_t i;

	ks_controller_free(d->ctrl);
	d->ctrl = NULL;
	ks_plugin_free(d->plugin, "the dry run is over");
	d->plugin = NULL;
	ks_manager_free(d->manager);
	ks_kube_free(d->kube);
	ks_http_free(d->http);
	for (i = 0; i < d->nkeys; i++)
		free(d->keys[i]);
	free(d->keys);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->timer, NULL);
}

static void stop(struct dry *d, int status)
{
	if (d->stopping) {
		if (d->plugin) /* a second signal: do not wait for in-flight reconciles */
			ks_lua_cancel_all(d->plugin->lua, "the dry run is stopping");
		return;
	}
	d->stopping = true;
	d->status = status;
	uv_timer_stop(&d->timer);
	if (d->ctrl)
		ks_controller_stop(d->ctrl, drained, d);
	else
		drained(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	ks_info("signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(s->data, 0);
}

static void start_controller(struct dry *d)
{
	char name[128];
	const char *b = strrchr(d->o->file, '/');

	snprintf(name, sizeof(name), "%s", b ? b + 1 : d->o->file);
	if (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".lua") == 0)
		name[strlen(name) - 4] = '\0';
	d->ctrl = ks_plugin_controller(d->loop, d->kube, d->manager, name, &d->plugin, d->watches,
				       &(struct ks_controller_opts){ .dry_run = true });
	ks_controller_start(d->ctrl);
}

static void probed(struct ks_kube_result *res, void *data)
{
	struct dry *d = data;
	size_t i;

	if (res->code == 0) {
		fprintf(stderr, "kupenstack plugin run: cannot reach the API server %s: %s\n",
			ks_kube_config(d->kube)->server, res->message);
		stop(d, 1);
		return;
	}
	if (d->stopping)
		return;
	ks_manager_cache(d->manager, &d->plugin->self.res);
	for (i = 0; i < d->plugin->nowns; i++)
		ks_manager_cache(d->manager, &d->plugin->owns[i].res);
	for (i = 0; i < d->plugin->nwatches; i++)
		ks_manager_cache(d->manager, &d->plugin->watches[i].res);
	uv_timer_start(&d->timer, tick, 0, 0);
}

static struct ks_cache *cache_for(void *data, const struct ks_kube_res *res)
{
	return ks_manager_find(data, res);
}

/* Connect and load the plugin. Returns 0, or 1 after saying why. */
static int setup(struct dry *d)
{
	const struct ks_lua_dryrun_opts *o = d->o;
	const char *b = strrchr(o->file, '/');
	struct ks_kubeconfig cfg;
	char *err = NULL, *src;
	size_t len;
	int rc;

	src = ks_read_file(o->file, &len, &rc);
	if (!src) {
		fprintf(stderr, "kupenstack plugin run: %s: %s\n", o->file, strerror(-rc));
		return 1;
	}
	rc = o->kubeconfig ? ks_kubeconfig_load(&cfg, o->kubeconfig, o->context, &err)
			   : ks_kubeconfig_in_cluster(&cfg, NULL, &err);
	if (rc != 0) {
		fprintf(stderr, "kupenstack plugin run: %s\n", err);
		free(err);
		free(src);
		return 1;
	}
	d->http = ks_http_new(d->loop);
	d->kube = ks_kube_new(d->http, &cfg);
	ks_kubeconfig_deinit(&cfg);
	d->manager = ks_manager_new(d->loop, d->kube, o->namespace);
	d->plugin = ks_plugin_load(&(struct ks_lua_host){ .loop = d->loop,
							  .http = d->http,
							  .kube = d->kube,
							  .stdlib_dir = o->stdlib_dir,
							  .cache_for = cache_for,
							  .cache_data = d->manager,
							  .settings = o->settings,
							  .nsettings = o->nsettings,
							  .fake = &d->fake },
				   b ? b + 1 : o->file, src, len, &err);
	free(src);
	if (!d->plugin) {
		fprintf(stderr, "kupenstack plugin run: %s\n", err);
		free(err);
		return 1;
	}
	return 0;
}

int ks_lua_dryrun(const struct ks_lua_dryrun_opts *o)
{
	struct dry d = { .o = o, .loop = uv_default_loop() };

	d.fake = (struct ks_lua_fake){ fake_http, fake_kube, fake_event };
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sigterm);
	uv_timer_init(d.loop, &d.timer);
	d.sigint.data = d.sigterm.data = d.timer.data = &d;
	if (setup(&d) != 0) {
		d.stopping = true;
		d.status = 1;
		drained(&d);
	} else {
		uv_signal_start(&d.sigint, on_signal, SIGINT);
		uv_signal_start(&d.sigterm, on_signal, SIGTERM);
		ks_kube_request(d.kube, "GET", "/version", NULL, NULL, probed, &d);
	}
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
	return d.status;
}
