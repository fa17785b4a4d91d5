/*
 * kt_watch.c: the reflector and cache against the real API server: ordered delivery,
 * a forced 410 (the API server restarted while we were cut off, so its watch cache
 * no longer reaches back to our resourceVersion), an API server killed mid-watch,
 * and a stalled connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kt.h"
#include "map.h"
#include "watch.h"

#define NS "kt-watch"

static struct kt t;

/* What the handlers saw: the model they build, and counts per key. */
struct model {
	struct ks_map *rv;   /* key -> strdup(resourceVersion) */
	struct ks_map *adds; /* key -> (void *)count */
	struct ks_map *dels;
	struct ks_buf log;
	bool dup_add, bad_update, bad_delete;
};

static void bump(struct ks_map *m, const char *key)
{
	ks_map_put(m, key, (void *)((uintptr_t)ks_map_get(m, key) + 1));
}

static void on_add(const struct ks_cache_obj *o, void *d)
{
	struct model *m = d;

	if (ks_map_has(m->rv, o->key))
		m->dup_add = true;
	free(ks_map_put(m->rv, o->key, ks_xstrdup(o->resource_version)));
	bump(m->adds, o->key);
	ks_buf_printf(&m->log, "A %s ", o->key);
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *d)
{
	struct model *m = d;

	if (!ks_map_has(m->rv, o->key) || !strcmp(old->resource_version, o->resource_version))
		m->bad_update = true;
	free(ks_map_put(m->rv, o->key, ks_xstrdup(o->resource_version)));
	ks_buf_printf(&m->log, "U %s ", o->key);
}

static void on_delete(const struct ks_cache_obj *o, void *d)
{
	struct model *m = d;
	void *rv = ks_map_del(m->rv, o->key);

	if (!rv)
		m->bad_delete = true;
	free(rv);
	bump(m->dels, o->key);
	ks_buf_printf(&m->log, "D %s ", o->key);
}

static void model_init(struct model *m, struct ks_cache *c)
{
	memset(m, 0, sizeof(*m));
	m->rv = ks_map_new(0);
	m->adds = ks_map_new(0);
	m->dels = ks_map_new(0);
	ks_buf_init(&m->log);
	ks_cache_add_handler(c, &(struct ks_cache_handler){ on_add, on_update, on_delete, m });
}

static void model_deinit(struct model *m)
{
	size_t it = 0;
	void *v;

	while (ks_map_next(m->rv, &it, NULL, &v))
		free(v);
	ks_map_free(m->rv);
	ks_map_free(m->adds);
	ks_map_free(m->dels);
	ks_buf_deinit(&m->log);
}

struct rig {
	struct ks_cache *cache;
	struct ks_watch *w;
	struct ks_kube *kube; /* NULL: t.kube */
	struct model m;
};

/* The rig a case started and has not stopped: a case that fails stops at its ASSERT,
 * and reap() stops the rig after it, so that the next case and kt_deinit() never find a
 * watch still running on a client they free. */
static struct rig *live;

static void rig_start(struct rig *r, struct ks_kube *kube, unsigned timeout, double grace)
{
	r->cache = ks_cache_new();
	model_init(&r->m, r->cache);
	r->kube = kube;
	r->w = ks_watch_new(&t.loop, kube ? kube : t.kube, r->cache,
			    &(struct ks_watch_opts){ .res = kt_widgets,
						     .namespace = NS,
						     .page_size = 7,
						     .timeout_min = timeout,
						     .timeout_max = timeout,
						     .silence_grace = grace });
	ks_watch_start(r->w);
	live = r;
}

static bool rig_synced(void *d)
{
	return ks_watch_synced(((struct rig *)d)->w);
}

static void rig_stop(struct rig *r)
{
	live = NULL;
	ks_watch_free(r->w);
	kt_run_for(&t, 0.05);
	ks_cache_free(r->cache);
	model_deinit(&r->m);
	if (r->kube)
		ks_kube_free(r->kube);
}

/* Set while a case has the API server stopped: reap() starts it again, so that a case
 * failing between stop and start leaves the cluster as it found it. */
static bool apiserver_down;

/* After each case: stop the rig it left running and start the API server it left down. */
static void reap(void)
{
	if (live) {
		printf("  (the failed case's watch stopped)\n");
		rig_stop(live);
	}
	if (apiserver_down && kt_sh("tests/env/kube status >/dev/null 2>&1") != 0) {
		printf("  (the failed case left the API server down: starting it)\n");
		kt_sh("tests/env/kube start-apiserver >/dev/null 2>&1");
	}
	apiserver_down = false;
}

static long do_call(void (*fn)(struct kt_res *r, void *arg), void *arg)
{
	struct kt_res r = { 0 };
	long code;

	fn(&r, arg);
	kt_wait(&t, &r, 60);
	code = r.code;
	if (code >= 300)
		fprintf(stderr, "call failed: %ld %s %s\n", r.code, r.reason, r.message);
	kt_res_clear(&r);
	return code;
}

static void create_fn(struct kt_res *r, void *arg)
{
	cJSON *w = kt_widget(NS, arg, 1);

	ks_kube_create(t.kube, &kt_widgets, NS, w, kt_store, r);
	cJSON_Delete(w);
}

static int bump_size = 100; /* widgets are created with size 1 */

static void update_fn(struct kt_res *r, void *arg)
{
	cJSON *p = cJSON_CreateObject();

	cJSON_AddNumberToObject(cJSON_AddObjectToObject(p, "spec"), "size", ++bump_size);
	ks_kube_patch(t.kube, &kt_widgets, NS, arg, NULL, KS_PATCH_MERGE, p, kt_store, r);
	cJSON_Delete(p);
}

static void delete_fn(struct kt_res *r, void *arg)
{
	ks_kube_delete(t.kube, &kt_widgets, NS, arg, NULL, kt_store, r);
}

/* A call right after the API server restarted: ready is not yet serving every route (a
 * custom resource can be 404 or 503 for a moment after /readyz says ok, until its handler
 * is installed again), so a client tries again, as ours does. ok2: a second answer that
 * also means done (AlreadyExists: an earlier try got through). */
struct again {
	void (*fn)(struct kt_res *r, void *arg);
	void *arg;
	long ok, ok2;
};

static bool try_call(void *d)
{
	struct again *a = d;
	long code = do_call(a->fn, a->arg);

	if (code == a->ok || code == a->ok2)
		return true;
	kt_run_for(&t, 0.5);
	return false;
}

#define AGAIN(f, n, c, c2) kt_until(&t, try_call, &(struct again){ f, (void *)(n), c, c2 }, 60)

#define CREATE(n) do_call(create_fn, (void *)(n))
#define UPDATE(n) do_call(update_fn, (void *)(n))
#define DELETE(n) do_call(delete_fn, (void *)(n))

/* Does the handlers' model equal what the server lists now? */
struct converge {
	struct rig *r;
	char why[256];
};

static bool converged(void *d)
{
	struct converge *cv = d;
	struct kt_res res = { 0 };
	const cJSON *it;
	size_t n = 0;
	bool ok = true;

	ks_kube_list(t.kube, &kt_widgets, NS, NULL, kt_store, &res);
	kt_wait(&t, &res, 60);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(res.body, "items"))
	{
		char key[256];
		const char *rv;

		snprintf(key, sizeof(key), "%s/%s", NS, ks_json_str(it, "metadata.name"));
		rv = ks_map_get(cv->r->m.rv, key);
		if (!rv || strcmp(rv, ks_json_str(it, "metadata.resourceVersion")) != 0) {
			snprintf(cv->why, sizeof(cv->why), "%s: model %s", key, rv ? rv : "absent");
			ok = false;
		}
		n++;
	}
	if (ok && n != ks_map_len(cv->r->m.rv)) {
		snprintf(cv->why, sizeof(cv->why), "model has %zu objects, server %zu",
			 ks_map_len(cv->r->m.rv), n);
		ok = false;
	}
	kt_res_clear(&res);
	if (!ok)
		kt_run_for(&t, 0.2);
	return ok;
}

static bool wait_converged(struct rig *r, double seconds)
{
	struct converge cv = { .r = r };
	bool ok = kt_until(&t, converged, &cv, seconds);

	if (!ok)
		fprintf(stderr, "  not converged: %s\n", cv.why);
	return ok;
}

static bool saw_order(void *d)
{
	struct rig *r = d;

	return r->m.log.data && strstr(r->m.log.data, "D kt-watch/order ");
}

TEST(delivers_add_update_delete_in_order)
{
	static struct rig r;

	rig_start(&r, NULL, 300, 30);
	ASSERT(kt_until(&t, rig_synced, &r, 30));
	ASSERT_EQ(CREATE("order"), 201);
	ASSERT_EQ(UPDATE("order"), 200);
	ASSERT_EQ(DELETE("order"), 200);
	ASSERT(kt_until(&t, saw_order, &r, 30));
	ASSERT(wait_converged(&r, 30));
	ASSERT(strstr(r.m.log.data, "A kt-watch/order U kt-watch/order D kt-watch/order ") != NULL);
	ASSERT(!r.m.dup_add && !r.m.bad_update && !r.m.bad_delete);
	rig_stop(&r);
}

/* A client whose connections go through proxy p. */
static struct ks_kube *via_proxy(struct kt_proxy *p)
{
	struct ks_kubeconfig c = t.cfg;
	struct ks_kube *k;

	c.server = ks_xasprintf("https://127.0.0.1:%d", kt_proxy_port(p));
	k = ks_kube_new(t.http, &c);
	free(c.server);
	return k;
}

static int server_port(void)
{
	const char *colon = strrchr(t.cfg.server, ':');

	return colon ? atoi(colon + 1) : 443;
}

TEST(relists_after_410_without_missing_or_duplicating)
{
	struct kt_proxy *p = kt_proxy_start(&t, "127.0.0.1", server_port());
	struct ks_watch_stats st;
	static struct rig r;
	char name[32];

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "keep-%d", i);
		ASSERT_EQ(CREATE(name), 201);
	}
	rig_start(&r, via_proxy(p), 300, 30);
	ASSERT(kt_until(&t, rig_synced, &r, 30));
	ASSERT(wait_converged(&r, 30));
	/* Cut off; change things; restart the API server so its new watch cache starts
	 * after our resourceVersion; then let us back in. */
	kt_proxy_set_mode(p, KT_PROXY_REFUSE);
	ASSERT_EQ(DELETE("keep-0"), 200);
	ASSERT_EQ(DELETE("keep-1"), 200);
	ASSERT_EQ(UPDATE("keep-2"), 200);
	ASSERT_EQ(CREATE("new-0"), 201);
	ASSERT_EQ(CREATE("new-1"), 201);
	apiserver_down = true;
	ASSERT_EQ(kt_sh("tests/env/kube restart-apiserver >/dev/null 2>&1"), 0);
	apiserver_down = false;
	ASSERT(AGAIN(update_fn, "keep-3", 200, 200));
	kt_proxy_set_mode(p, KT_PROXY_FORWARD);
	ASSERT(wait_converged(&r, 60));
	ks_watch_get_stats(r.w, &st);
	ASSERT(st.relists >= 1);
	ASSERT(!r.m.dup_add && !r.m.bad_update && !r.m.bad_delete);
	ASSERT_EQ((uintptr_t)ks_map_get(r.m.dels, "kt-watch/keep-0"), 1);
	ASSERT_EQ((uintptr_t)ks_map_get(r.m.dels, "kt-watch/keep-1"), 1);
	ASSERT_EQ((uintptr_t)ks_map_get(r.m.adds, "kt-watch/keep-4"), 1);
	ASSERT_EQ((uintptr_t)ks_map_get(r.m.adds, "kt-watch/new-0"), 1);
	rig_stop(&r);
	kt_proxy_stop(p);
}

TEST(apiserver_killed_mid_watch_reconnects_and_converges)
{
	struct ks_watch_stats st;
	static struct rig r;
	uint64_t t0;

	rig_start(&r, NULL, 300, 30);
	ASSERT(kt_until(&t, rig_synced, &r, 30));
	ASSERT(wait_converged(&r, 30));
	ks_watch_get_stats(r.w, &st);
	apiserver_down = true;
	ASSERT_EQ(kt_sh("tests/env/kube stop-apiserver >/dev/null 2>&1"), 0);
	kt_run_for(&t, 2);
	ASSERT_EQ(kt_sh("tests/env/kube start-apiserver >/dev/null 2>&1"), 0);
	apiserver_down = false;
	t0 = ks_now_ns();
	ASSERT(AGAIN(create_fn, "after-restart", 201, 409));
	ASSERT(wait_converged(&r, 60));
	/* A figure for the note, not an assertion: timings belong to benchmarks. */
	printf("# converged %.2f s after the API server answered again\n",
	       (double)(ks_now_ns() - t0) / 1e9);
	ks_watch_get_stats(r.w, &st);
	ASSERT(st.errors >= 1);
	ASSERT(ks_map_has(r.m.rv, "kt-watch/after-restart"));
	rig_stop(&r);
}

TEST(stalled_connection_is_detected_and_reopened)
{
	struct kt_proxy *p = kt_proxy_start(&t, "127.0.0.1", server_port());
	struct ks_watch_stats st;
	static struct rig r;

	/* The server ends each watch after 2 s; silence past 2 + 1 s means dead. */
	rig_start(&r, via_proxy(p), 2, 1);
	ASSERT(kt_until(&t, rig_synced, &r, 30));
	kt_proxy_set_mode(p, KT_PROXY_STALL);
	ASSERT_EQ(CREATE("during-stall"), 201);
	kt_run_for(&t, 4.5);
	ks_watch_get_stats(r.w, &st);
	ASSERT(st.stalls >= 1);
	ASSERT(!ks_map_has(r.m.rv, "kt-watch/during-stall"));
	kt_proxy_set_mode(p, KT_PROXY_FORWARD);
	ASSERT(wait_converged(&r, 30));
	ASSERT(ks_map_has(r.m.rv, "kt-watch/during-stall"));
	rig_stop(&r);
	kt_proxy_stop(p);
}

int main(void)
{
	kt_init(&t, "KUBECONFIG");
	kt_ensure_crd(&t);
	kt_fresh_namespace(&t, NS);
	RUN(delivers_add_update_delete_in_order);
	reap();
	RUN(relists_after_410_without_missing_or_duplicating);
	reap();
	RUN(apiserver_killed_mid_watch_reconnects_and_converges);
	reap();
	RUN(stalled_connection_is_detected_and_reopened);
	reap();
	KT_MAIN_END(&t);
}
