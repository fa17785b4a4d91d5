/*
 * reconcile.c: the flow of one key: the object from the cache; our finalizer added
 * before the first reconcile (nothing external may happen before it is on); the
 * callback; then the status written only if it changed, or, after a successful
 * finalize, the finalizer removed; then the queue told how it went.
 *
 * The status is written only onto the version of the object the reconcile read: the
 * cache can lag behind a status this host wrote a moment ago, and a reconcile that
 * started from the older copy would otherwise put back what it read (a count, a record
 * of a recovery in progress). Refused with a conflict, it is looked at again soon, from
 * a newer copy. So that this stays rare, the resourceVersion our own write returned is
 * remembered per key (c->written): a reconcile that would start from a cached copy older
 * than it waits for the watch to bring that version instead. Otherwise a notification
 * that comes in right after a write makes the next reconcile act on what was true before
 * it (start a server again, say) and then lose the record of it to the conflict.
 * resourceVersions are compared as the integers the API server's etcd storage gives
 * (as client-go's mutation cache does); one that is not an integer is not remembered.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller_impl.h"
#include "dryrun.h"
#include "event.h"
#include "fault.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "map.h"
#include "metrics.h"

struct ks_reconcile {
	struct ks_controller *c;
	char *key;
	cJSON *obj;
	bool deleting;
	bool reported;
	uint64_t start_ns;
	char *error;
	char *reason;
	bool terminal;
	bool stale; /* the status write found a newer object: look again */
	double requeue_after, backoff;
};

const cJSON *ks_reconcile_object(const struct ks_reconcile *r)
{
	return r->obj;
}

const char *ks_reconcile_key(const struct ks_reconcile *r)
{
	return r->key;
}

bool ks_reconcile_deleting(const struct ks_reconcile *r)
{
	return r->deleting;
}

static void finish(struct ks_reconcile *r)
{
	struct ks_controller *c = r->c;
	enum ks_reconcile_result how = KS_RECONCILE_SUCCESS;
	double delay;

	if (r->stale) {
		how = KS_RECONCILE_REQUEUE_AFTER;
		delay = ks_queue_add_rate_limited(c->queue, r->key);
		ks_debug("status not written: the object changed since it was read",
			 "controller=%s key=%s retry_in=%.3f", c->name, r->key, delay);
	} else if (r->error && !r->terminal) {
		how = KS_RECONCILE_ERROR;
		delay = ks_queue_add_rate_limited(c->queue, r->key);
		if (r->backoff > delay)
			ks_queue_add_after(c->queue, r->key, r->backoff);
		ks_warn("reconcile failed", "controller=%s key=%s retry_in=%.3f error=%s", c->name,
			r->key, KS_MAX(delay, r->backoff), ks_logq(r->error));
	} else {
		ks_queue_forget(c->queue, r->key);
		if (r->error)
			ks_warn("reconcile failed for good",
				"controller=%s key=%s reason=%s error=%s", c->name, r->key,
				r->reason ? r->reason : "Terminal", ks_logq(r->error));
		if (r->requeue_after > 0) {
			how = KS_RECONCILE_REQUEUE_AFTER;
			ks_queue_add_after(c->queue, r->key, r->requeue_after);
		}
	}
	if (!r->error && !r->stale)
		ks_debug("reconciled", "controller=%s key=%s seconds=%.3f", c->name, r->key,
			 (double)(ks_now_ns() - r->start_ns) / 1e9);
	if (c->metrics)
		ks_metrics_reconcile(c->metrics, c->name, how,
				     (double)(ks_now_ns() - r->start_ns) / 1e9);
	ks_queue_done(c->queue, r->key);
	cJSON_Delete(r->obj);
	free(r->key);
	free(r->error);
	free(r->reason);
	free(r);
}

static void fail(struct ks_reconcile *r, const char *what, const struct ks_kube_result *res)
{
	free(r->error);
	r->error = ks_xasprintf("%s: %s: %s", what, res->reason ? res->reason : "Error",
				res->message ? res->message : "");
	finish(r);
}

/* A resourceVersion as the integer it is in etcd3 storage; 0 when it is not one. */
static uintptr_t rv_number(const char *rv)
{
	char *end;
	unsigned long long n;

	if (!rv || *rv < '0' || *rv > '9')
		return 0;
	errno = 0;
	n = strtoull(rv, &end, 10);
	if (errno || *end || n > UINTPTR_MAX)
		return 0;
	return (uintptr_t)n;
}

/* Remember the version of key's object that a write of ours returned (body). */
static void wrote(struct ks_controller *c, const char *key, const cJSON *body)
{
	uintptr_t n = rv_number(ks_json_str(body, "metadata.resourceVersion"));

	if (n)
		ks_map_put(c->written, key, (void *)n);
}

/* Is the cached copy of key (at version rv) older than what our last write returned?
 * Forgets the written version once the cache has caught up with it. */
static bool behind_own_write(struct ks_controller *c, const char *key, const char *rv)
{
	uintptr_t w = (uintptr_t)ks_map_get(c->written, key), n;

	if (!w)
		return false;
	n = rv_number(rv);
	if (n && n < w)
		return true;
	ks_map_del(c->written, key);
	return false;
}

static void status_written(struct ks_kube_result *res, void *data)
{
	struct ks_reconcile *r = data;

	if (res->code == 409) {
		r->stale = true;
		finish(r);
		return;
	}
	if (!ks_kube_ok(res) && res->code != 404) {
		fail(r, "could not write the status", res);
		return;
	}
	if (ks_kube_ok(res))
		wrote(r->c, r->key, res->body);
	finish(r);
}

static void write_status(struct ks_reconcile *r, const struct ks_outcome *res)
{
	struct ks_controller *c = r->c;
	char now[32];
	cJSON *next, *patch;

	ks_status_now(now);
	next = ks_status_next(r->obj, res, now);
	if (!next) {
		finish(r);
		return;
	}
	patch = ks_status_patch(r->obj, next);
	ks_fault_point(c->kind, "status");
	if (c->dry_run) {
		ks_dryrun_write("PATCH", &c->res, ks_json_str(r->obj, "metadata.namespace"),
				ks_json_str(r->obj, "metadata.name"), "status", "merge", patch);
		cJSON_Delete(patch);
		finish(r);
		return;
	}
	/* A merge patch that names a resourceVersion is applied to that version only. */
	if (ks_json_str(r->obj, "metadata.resourceVersion"))
		cJSON_AddStringToObject(cJSON_AddObjectToObject(patch, "metadata"),
					"resourceVersion",
					ks_json_str(r->obj, "metadata.resourceVersion"));
	ks_kube_patch(c->kube, &c->res, ks_json_str(r->obj, "metadata.namespace"),
		      ks_json_str(r->obj, "metadata.name"), "status", KS_PATCH_MERGE, patch,
		      status_written, r);
	cJSON_Delete(patch);
}

/* The index of our finalizer in the object's list, or -1. */
static int finalizer_index(const struct ks_reconcile *r)
{
	const cJSON *f;
	int i = 0;

	cJSON_ArrayForEach(f, ks_json_path(r->obj, "metadata.finalizers"))
	{
		if (cJSON_IsString(f) && strcmp(f->valuestring, r->c->finalizer) == 0)
			return i;
		i++;
	}
	return -1;
}

/* A JSON patch guarded by the resourceVersion we read, so no one else's finalizer
 * change is lost. */
static cJSON *guarded_patch(const struct ks_reconcile *r)
{
	cJSON *ops = cJSON_CreateArray(), *test = cJSON_CreateObject();

	cJSON_AddStringToObject(test, "op", "test");
	cJSON_AddStringToObject(test, "path", "/metadata/resourceVersion");
	cJSON_AddStringToObject(test, "value", ks_json_str(r->obj, "metadata.resourceVersion"));
	cJSON_AddItemToArray(ops, test);
	return ops;
}

static void finalizer_removed(struct ks_kube_result *res, void *data)
{
	struct ks_reconcile *r = data;

	if (!ks_kube_ok(res) && res->code != 404) {
		fail(r, "could not remove the finalizer", res);
		return;
	}
	ks_info("finalized", "controller=%s key=%s", r->c->name, r->key);
	finish(r);
}

static void remove_finalizer(struct ks_reconcile *r)
{
	struct ks_controller *c = r->c;
	cJSON *ops = guarded_patch(r), *op = cJSON_CreateObject();
	char path[64];

	snprintf(path, sizeof(path), "/metadata/finalizers/%d", finalizer_index(r));
	cJSON_AddStringToObject(op, "op", "remove");
	cJSON_AddStringToObject(op, "path", path);
	cJSON_AddItemToArray(ops, op);
	if (c->dry_run) {
		ks_dryrun_write("PATCH", &c->res, ks_json_str(r->obj, "metadata.namespace"),
				ks_json_str(r->obj, "metadata.name"), NULL, "json", ops);
		cJSON_Delete(ops);
		finish(r);
		return;
	}
	ks_kube_patch(c->kube, &c->res, ks_json_str(r->obj, "metadata.namespace"),
		      ks_json_str(r->obj, "metadata.name"), NULL, KS_PATCH_JSON, ops,
		      finalizer_removed, r);
	cJSON_Delete(ops);
}

void ks_reconcile_done(struct ks_reconcile *r, const struct ks_outcome *res)
{
	struct ks_controller *c = r->c;

	ks_require(!r->reported);
	r->reported = true;
	if (c->abandoned) {
		finish(r);
		return;
	}
	r->terminal = res->terminal;
	r->requeue_after = res->requeue_after;
	r->backoff = res->backoff;
	if (res->error) {
		r->error = ks_xstrdup(res->error);
		r->reason = res->reason ? ks_xstrdup(res->reason) : NULL;
		if (c->events)
			ks_event(c->events, r->obj, "Warning",
				 res->reason ? res->reason
					     : (r->deleting ? "FinalizeFailed" : "ReconcileFailed"),
				 "%s", res->error);
	}
	/* A finalize that asks to be called again (requeue_after) is not finished yet. */
	if (r->deleting && !res->error && res->requeue_after <= 0) {
		remove_finalizer(r);
		return;
	}
	write_status(r, res);
}

static void call(struct ks_reconcile *r)
{
	r->c->reconcile(r->c, r, r->c->data);
}

static void finalizer_added(struct ks_kube_result *res, void *data)
{
	struct ks_reconcile *r = data;

	if (!ks_kube_ok(res)) {
		fail(r, "could not add the finalizer", res);
		return;
	}
	wrote(r->c, r->key, res->body);
	cJSON_Delete(r->obj);
	r->obj = res->body;
	res->body = NULL;
	ks_json_strip_object(r->obj);
	call(r);
}

/* Dry run: print the patch ops (taken), put the finalizer on our copy, and go on. */
static void dry_add_finalizer(struct ks_reconcile *r, cJSON *ops)
{
	cJSON *meta = cJSON_GetObjectItem(r->obj, "metadata");
	cJSON *list = cJSON_GetObjectItem(meta, "finalizers");

	ks_dryrun_write("PATCH", &r->c->res, ks_json_str(r->obj, "metadata.namespace"),
			ks_json_str(r->obj, "metadata.name"), NULL, "json", ops);
	cJSON_Delete(ops);
	if (!list)
		list = cJSON_AddArrayToObject(meta, "finalizers");
	cJSON_AddItemToArray(list, cJSON_CreateString(r->c->finalizer));
	call(r);
}

static void add_finalizer(struct ks_reconcile *r)
{
	struct ks_controller *c = r->c;
	cJSON *ops = guarded_patch(r), *op = cJSON_CreateObject();

	cJSON_AddStringToObject(op, "op", "add");
	if (ks_json_path(r->obj, "metadata.finalizers")) {
		cJSON_AddStringToObject(op, "path", "/metadata/finalizers/-");
		cJSON_AddStringToObject(op, "value", c->finalizer);
	} else {
		cJSON *list = cJSON_CreateArray();
		cJSON_AddItemToArray(list, cJSON_CreateString(c->finalizer));
		cJSON_AddStringToObject(op, "path", "/metadata/finalizers");
		cJSON_AddItemToObject(op, "value", list);
	}
	cJSON_AddItemToArray(ops, op);
	if (c->dry_run) {
		dry_add_finalizer(r, ops);
		return;
	}
	ks_kube_patch(c->kube, &c->res, ks_json_str(r->obj, "metadata.namespace"),
		      ks_json_str(r->obj, "metadata.name"), NULL, KS_PATCH_JSON, ops,
		      finalizer_added, r);
	cJSON_Delete(ops);
}

void ks_controller_work(struct ks_queue *q, const char *key, void *data)
{
	struct ks_controller *c = data;
	const struct ks_cache_obj *o;
	const char *slash = strchr(key, '/');
	struct ks_reconcile *r;
	char ns[256];
	bool has;

	/* Until every kind it reads is synced (owned, watched, the Namespaces), a plugin
	 * would see a half-filled cache: hold the key back a little. */
	if (!ks_manager_all_synced(c->manager, ns, sizeof(ns))) {
		ks_queue_add_after(q, key, 0.2);
		ks_queue_done(q, key);
		return;
	}
	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - key) : 0, key);
	o = ks_cache_get(c->cache, slash ? ns : NULL, slash ? slash + 1 : key);
	if (!o) {
		ks_map_del(c->written, key);
		ks_queue_forget(q, key);
		ks_queue_done(q, key);
		return;
	}
	/* The watch brings the version we wrote (and adds the key again): the second is
	 * only in case it is slow. */
	if (behind_own_write(c, key, o->resource_version)) {
		ks_debug("the cache is behind our own write: waiting for the watch",
			 "controller=%s key=%s cached=%s", c->name, key, o->resource_version);
		ks_queue_add_after(q, key, 1.0);
		ks_queue_done(q, key);
		return;
	}
	r = ks_xcalloc(1, sizeof(*r));
	r->c = c;
	r->key = ks_xstrdup(key);
	r->start_ns = ks_now_ns();
	r->obj = ks_json_parse(o->json, o->len);
	has = c->finalizer && finalizer_index(r) >= 0;
	if (!has && !ks_controller_selects(c, r->obj)) {
		finish(r); /* not ours (any more): leave it alone */
		return;
	}
	if (ks_json_str(r->obj, "metadata.deletionTimestamp")) {
		if (!has) {
			finish(r);
			return;
		}
		r->deleting = true;
		call(r);
	} else if (c->finalizer && !has) {
		add_finalizer(r);
	} else {
		call(r);
	}
}
