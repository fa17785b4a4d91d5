/*
 * loader.c: the loader's life: created (the files loaded), started (controllers run, the
 * directory polled and watched), stopped (controllers drained) and freed. Its parts:
 * source_dir.c and source_configmap.c find the versions, version.c takes each in or
 * refuses it, binding.c runs, drains and retires each version's controller.
 *
 * Precedence: a ConfigMap plugin overrides the file plugin of the same kind (the operator's
 * own version of a shipped kind): the file's controller is retired and the file is kept
 * aside ("shadowed") until no ConfigMap plugin reconciles that kind any more, when the file
 * loads again. Two files, or two ConfigMap keys, for one kind: the second is refused. With
 * --plugins-configmaps, no controller starts before the ConfigMaps have been listed, so a
 * shipped plugin never runs where the operator's overrides it.
 */
#include <stdlib.h>

#include "ks.h"
#include "log.h"
#include "metrics.h"
#include "plugin/consume.h"
#include "plugin/loader_impl.h"
#include "plugin/plugin_metrics.h"

static struct ks_cache *cache_for(void *data, const struct ks_kube_res *res)
{
	return ks_manager_find(data, res);
}

static void fs_closed(uv_handle_t *h)
{
	struct ks_loader *l = h->data;

	l->fs_open = false;
	if (l->stopping_free && --l->closing == 0)
		free(l);
}

static void start_controllers(struct ks_loader *l)
{
	struct slot *s;

	for (s = l->slots; s; s = s->next)
		if (s->b)
			ks_binding_run(l, s->b);
}

static void tick(uv_timer_t *t)
{
	struct ks_loader *l = t->data;
	uint64_t ms = (uint64_t)(l->o.poll_seconds * 1000);

	if (l->deferred) {
		if (!ks_loader_configmaps_listed(l))
			return;
		l->deferred = false;
		start_controllers(l);
		uv_timer_start(&l->timer, tick, ms, ms);
		return;
	}
	ks_loader_reap_versions(l, false);
	ks_loader_scan(l);
}

/* The memory gauge of each running plugin, refreshed before every scrape. */
static void collect_memory(struct ks_metrics *m, void *data)
{
	struct ks_loader *l = data;
	struct slot *s;

	(void)m;
	for (s = l->slots; s; s = s->next)
		if (s->b)
			ks_plugin_metrics_memory(l->pm, s->path, ks_lua_memory(s->b->plugin->lua));
}

struct ks_loader *ks_loader_new(uv_loop_t *loop, const struct ks_loader_opts *o)
{
	struct ks_loader *l = ks_xcalloc(1, sizeof(*l));

	ks_list_init(&l->drains);
	l->pm = ks_plugin_metrics_new(o->metrics);
	if (o->metrics)
		ks_metrics_add_collector(o->metrics, collect_memory, l);

	l->loop = loop;
	l->o = *o;
	l->dir = o->dir ? ks_xstrdup(o->dir) : NULL;
	l->o.dir = l->dir;
	if (l->o.poll_seconds <= 0)
		l->o.poll_seconds = 1;
	l->o.host.cache_for = cache_for;
	l->o.host.cache_data = o->manager;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_init(loop, &l->debounce);
	l->debounce.data = l;
	ks_loader_scan(l);
	if (o->configmap_namespace)
		ks_loader_watch_configmaps(l);
	return l;
}

void ks_loader_start(struct ks_loader *l)
{
	uint64_t ms = (uint64_t)(l->o.poll_seconds * 1000);

	l->started = true;
	if (l->cm_manager && !ks_loader_configmaps_synced(l)) {
		l->deferred = true;
		l->deferred_since = uv_now(l->loop) / 1e3;
		uv_timer_start(&l->timer, tick, 20, 20);
	} else {
		start_controllers(l);
		uv_timer_start(&l->timer, tick, ms, ms);
	}
	/* libuv fs events make a change take effect at once; the timer catches what they
	 * miss (editors that replace the file, network filesystems). */
	if (l->dir && uv_fs_event_init(l->loop, &l->fs_event) == 0) {
		l->fs_event.data = l;
		l->fs_open = true;
		l->fs_watching =
			uv_fs_event_start(&l->fs_event, ks_loader_dir_changed, l->dir, 0) == 0;
		if (!l->fs_watching)
			uv_close((uv_handle_t *)&l->fs_event, fs_closed);
	}
}

void ks_loader_stop(struct ks_loader *l, void (*done)(void *data), void *data)
{
	struct slot *s;

	uv_timer_stop(&l->timer);
	uv_timer_stop(&l->debounce);
	if (l->fs_watching) {
		uv_fs_event_stop(&l->fs_event);
		uv_close((uv_handle_t *)&l->fs_event, fs_closed);
		l->fs_watching = false;
	}
	l->stopping = true;
	l->done = done;
	l->done_data = data;
	for (s = l->slots; s; s = s->next) {
		ks_loader_cancel_vet(l, s);
		if (s->b) {
			ks_binding_drain(l, s->b);
			s->b = NULL;
		}
	}
	ks_loader_maybe_done(l);
}

static void handle_closed(uv_handle_t *h)
{
	struct ks_loader *l = h->data;

	if (--l->closing == 0)
		free(l);
}

void ks_loader_free(struct ks_loader *l)
{
	struct slot *s, *next;

	if (!l)
		return;
	l->stopping_free = true;
	/* Bindings whose drain did not finish (the host's drain timed out): their tasks are
	 * cancelled, which ends their reconciles and so the drain (retired() frees them);
	 * what is left after that is freed here, so that no callback comes later. */
	while (!ks_list_empty(&l->drains)) {
		struct binding *b =
			KS_CONTAINER_OF(ks_list_first(&l->drains), struct binding, link);

		ks_controller_abandon(b->ctrl);
		ks_lua_cancel_all(b->plugin->lua, "the host is stopping");
		if (ks_list_first(&l->drains) == &b->link)
			ks_binding_retired(b);
	}
	for (s = l->slots; s; s = next) {
		next = s->next;
		ks_loader_cancel_vet(l, s);
		if (s->b) {
			ks_binding_stop_consumers(s->b);
			ks_plugin_free(s->b->plugin, "the host is stopping");
			ks_controller_free(s->b->ctrl);
			free(s->b);
		}
		free(s->shadowed);
		free(s->path);
		free(s);
	}
	ks_loader_reap_versions(l, true);
	l->closing = 2 + l->fs_open;
	uv_close((uv_handle_t *)&l->debounce, handle_closed);
	if (l->fs_watching) {
		uv_fs_event_stop(&l->fs_event);
		uv_close((uv_handle_t *)&l->fs_event, fs_closed);
	}
	if (l->cm_cache)
		ks_cache_remove_handler(l->cm_cache, &l->cm_h);
	ks_manager_free(l->cm_manager);
	if (l->o.metrics)
		ks_metrics_remove_collector(l->o.metrics, collect_memory, l);
	ks_plugin_metrics_free(l->pm);
	free(l->dir);
	uv_close((uv_handle_t *)&l->timer, handle_closed);
}

size_t ks_loader_plugins(const struct ks_loader *l)
{
	const struct slot *s;
	size_t n = 0;

	for (s = l->slots; s; s = s->next)
		n += s->b != NULL;
	return n;
}

unsigned long ks_loader_failures(const struct ks_loader *l)
{
	return l->failures;
}

bool ks_loader_consumers_ready(const struct ks_loader *l, char *why, size_t cap)
{
	for (const struct slot *s = l ? l->slots : NULL; s; s = s->next)
		if (s->b && !ks_consumers_ready(s->b->consumers, why, cap))
			return false;
	return true;
}
