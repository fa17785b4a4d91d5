/*
 * loader.c: a directory of plugins, polled for changes, each plugin version bound to
 * a controller.
 *
 * Precedence: a ConfigMap plugin overrides the file plugin of the same kind (the operator's
 * own version of a shipped kind): the file's controller is retired and the file is kept
 * aside ("shadowed") until no ConfigMap plugin reconciles that kind any more, when the file
 * loads again. Two files, or two ConfigMap keys, for one kind: the second is refused. With
 * --plugins-configmaps, no controller starts before the ConfigMaps have been listed, so a
 * shipped plugin never runs where the operator's overrides it.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "json.h"
#include "ks.h"
#include "log.h"
#include "metrics.h"
#include "plugin/candidate.h"
#include "plugin/consume.h"
#include "plugin/loader_impl.h"
#include "plugin/plugin_metrics.h"

static struct ks_cache *cache_for(void *data, const struct ks_kube_res *res)
{
	return ks_manager_find(data, res);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The slot other than self whose plugin reconciles kind.group, or NULL. */
static struct slot *holder(struct ks_loader *l, const struct slot *self, const char *kind,
			   const char *group)
{
	struct slot *s;

	for (s = l->slots; s; s = s->next) {
		const struct ks_plugin *q = s->b ? s->b->plugin : NULL;
		if (s != self && q && strcmp(q->self.kind, kind) == 0 &&
		    strcmp(q->self.group, group) == 0)
			return s;
	}
	return NULL;
}

/* File slot f gives way to the ConfigMap plugin p of slot by (or, b NULL, is loaded while
 * by holds its kind): its controller retires and it waits, shadowed. */
static void shadow(struct ks_loader *l, struct slot *f, const struct slot *by,
		   const struct ks_plugin *p)
{
	free(f->shadowed);
	f->shadowed = ks_xasprintf("%s.%s", p->self.kind, p->self.group);
	ks_info("plugin overridden", "file=%s kind=%s by=%s", f->path, f->shadowed, by->path);
	ks_plugin_metrics_removed(l->pm, f->path);
	if (f->b) {
		ks_binding_retire(l, f->b, "the plugin is overridden by a ConfigMap plugin");
		f->b = NULL;
	}
}

static void load(struct ks_loader *l, struct slot *s);

/* Files shadowed by a kind no ConfigMap plugin reconciles any more load again. */
static void unshadow(struct ks_loader *l)
{
	struct slot *s, *c;

	for (s = l->slots; s; s = s->next) {
		bool held = false;

		if (!s->shadowed)
			continue;
		for (c = l->slots; c && !held; c = c->next)
			if (c->configmap && c->b) {
				char *k = ks_xasprintf("%s.%s", c->b->plugin->self.kind,
						       c->b->plugin->self.group);
				held = strcmp(k, s->shadowed) == 0;
				free(k);
			}
		if (held)
			continue;
		ks_info("plugin no longer overridden", "file=%s kind=%s", s->path, s->shadowed);
		free(s->shadowed);
		s->shadowed = NULL;
		s->stamp = 0;
		load(l, s);
	}
}

/* c refused: say so in the log, the metrics and, for a ConfigMap (cm), an Event on it. */
static void refused(struct ks_loader *l, struct slot *s, const cJSON *cm, const char *err)
{
	const char *kept = s->b ? "previous version" : "none";

	ks_err("plugin refused", "file=%s error=%s kept=%s", s->path, ks_logq(err), kept);
	ks_plugin_metrics_refused(l->pm, s->path, s->b ? s->b->plugin : NULL, err);
	if (cm && l->o.events) {
		/* A listed object may lack apiVersion and kind: the Event needs them. */
		cJSON *io = cJSON_CreateObject();
		cJSON_AddStringToObject(io, "apiVersion", "v1");
		cJSON_AddStringToObject(io, "kind", "ConfigMap");
		cJSON_AddItemToObject(io, "metadata",
				      cJSON_Duplicate(cJSON_GetObjectItem(cm, "metadata"), true));
		ks_event(l->o.events, io, "Warning", "PluginRejected", "%s refused (kept: %s): %s",
			 base(s->path), kept, err);
		cJSON_Delete(io);
	}
	l->failures++;
}

static void load_text(struct ks_loader *l, struct slot *s, const struct ks_candidate *c,
		      const cJSON *cm)
{
	struct ks_plugin *p, *old;
	char *err = NULL, name[128];
	struct slot *other;

	p = ks_candidate_load(&l->o.host, c, l->o.vet, &err);
	other = p ? holder(l, s, p->self.kind, p->self.group) : NULL;
	if (other && s->configmap && !other->configmap) {
		shadow(l, other, s, p);
	} else if (other && !s->configmap && other->configmap) {
		shadow(l, s, other, p);
		ks_plugin_free(p, "overridden");
		return;
	} else if (other) {
		err = ks_xasprintf("plugin %s: kind %s.%s is already reconciled by %s",
				   base(s->path), p->self.kind, p->self.group, base(other->path));
		ks_plugin_free(p, "refused");
		p = NULL;
	}
	if (p && !s->configmap && s->shadowed) {
		free(s->shadowed);
		s->shadowed = NULL;
	}
	if (!p) {
		refused(l, s, cm, err);
		free(err);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(base(s->path)) - 4), base(s->path));
	if (s->b && ks_plugin_same_shape(s->b->plugin, p)) {
		old = s->b->plugin;
		s->b->plugin = p;
		ks_loader_retire_version(l, old);
		ks_controller_enqueue_all(s->b->ctrl, KS_QUEUE_LOW);
		ks_plugin_metrics_loaded(l->pm, s->path, p, true);
		ks_info("plugin reloaded", "file=%s kind=%s", s->path, p->self.kind);
		return;
	}
	ks_plugin_metrics_loaded(l->pm, s->path, p, s->b != NULL);
	if (s->b)
		ks_binding_retire(l, s->b, "the plugin changed what it reconciles");
	s->b = ks_binding_new(l, p, name);
	ks_info("plugin loaded", "file=%s kind=%s group=%s version=%s finalizer=%s", s->path,
		p->self.kind, p->self.group, p->self.version, p->finalizer ? p->finalizer : "none");
}

static void load(struct ks_loader *l, struct slot *s)
{
	struct ks_candidate c;
	char *err = NULL;

	if (ks_candidate_read(&c, s->path, &err) != 0) {
		ks_err("cannot read plugin", "file=%s error=%s", s->path, ks_logq(err));
		ks_plugin_metrics_refused(l->pm, s->path, s->b ? s->b->plugin : NULL, err);
		l->failures++;
		free(err);
		return;
	}
	load_text(l, s, &c, NULL);
	ks_candidate_deinit(&c);
}

static bool is_plugin_file(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".lua") == 0 &&
	       strcmp(name, "README.lua") != 0;
}

static struct slot *find_slot(struct ks_loader *l, const char *path)
{
	struct slot *s;

	for (s = l->slots; s; s = s->next)
		if (strcmp(s->path, path) == 0)
			return s;
	return NULL;
}

static void drop_gone(struct ks_loader *l)
{
	struct slot **pp = &l->slots, *s;

	while ((s = *pp) != NULL) {
		if (s->seen || s->configmap) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		ks_plugin_metrics_removed(l->pm, s->path);
		if (s->b) {
			ks_info("plugin removed", "file=%s kind=%s", s->path,
				s->b->plugin->self.kind);
			ks_binding_retire(l, s->b, "the plugin file was removed");
		}
		free(s->shadowed);
		free(s->path);
		free(s);
	}
}

static void scan(struct ks_loader *l)
{
	struct dirent *d;
	struct slot *s;
	struct stat st;
	DIR *dir = l->dir ? opendir(l->dir) : NULL;
	char *path;

	if (!l->dir)
		return;
	for (s = l->slots; s; s = s->next)
		s->seen = false;
	if (!dir) {
		ks_warn("cannot read the plugins directory", "dir=%s", l->dir);
		for (s = l->slots; s; s = s->next)
			s->seen = true; /* keep what runs */
		return;
	}
	while ((d = readdir(dir)) != NULL) {
		if (!is_plugin_file(d->d_name))
			continue;
		path = ks_xasprintf("%s/%s", l->dir, d->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		s = find_slot(l, path);
		if (!s) {
			s = ks_xcalloc(1, sizeof(*s));
			s->path = path;
			s->next = l->slots;
			l->slots = s;
		} else {
			free(path);
		}
		s->seen = true;
		if (s->stamp == ks_candidate_stamp(s->path, &st))
			continue;
		s->stamp = ks_candidate_stamp(s->path, &st);
		load(l, s);
	}
	closedir(dir);
	drop_gone(l);
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

static const struct ks_kube_res configmaps = { "", "v1", "configmaps", true };

/* Have the plugin ConfigMaps been listed? Warns every 10 s while they have not. */
static bool configmaps_listed(struct ks_loader *l)
{
	if (ks_manager_synced(l->cm_manager, &configmaps))
		return true;
	if (uv_now(l->loop) / 1e3 - l->deferred_since > 10) {
		ks_warn("controllers wait for the plugin ConfigMaps to be listed", "namespace=%s",
			l->o.configmap_namespace);
		l->deferred_since = uv_now(l->loop) / 1e3;
	}
	return false;
}

static void tick(uv_timer_t *t)
{
	struct ks_loader *l = t->data;
	uint64_t ms = (uint64_t)(l->o.poll_seconds * 1000);

	if (l->deferred) {
		if (!configmaps_listed(l))
			return;
		l->deferred = false;
		start_controllers(l);
		uv_timer_start(&l->timer, tick, ms, ms);
		return;
	}
	ks_loader_reap_versions(l, false);
	scan(l);
}

static void settled(uv_timer_t *t)
{
	scan(t->data);
}

/* An editor's save is several events (truncate, write, close, rename): scan once they
 * have settled, so one edit loads once. */
static void dir_changed(uv_fs_event_t *h, const char *file, int events, int status)
{
	struct ks_loader *l = h->data;

	(void)file;
	(void)events;
	(void)status;
	uv_timer_start(&l->debounce, settled, 100, 0);
}

/* Load, reload or retire the slots of one ConfigMap's *.lua keys (obj NULL: gone). */
static void configmap_changed(struct ks_loader *l, const char *key, const cJSON *obj)
{
	const cJSON *data = obj ? cJSON_GetObjectItem(obj, "data") : NULL, *d;
	const char *label =
		obj ? cJSON_GetStringValue(cJSON_GetObjectItem(ks_json_path(obj, "metadata.labels"),
							       "kupenstack.io/plugin"))
		    : NULL;
	bool wanted = label && strcmp(label, "true") == 0;
	char *prefix = ks_xasprintf("configmap:%s/", key);
	struct slot *s;

	for (s = l->slots; s; s = s->next)
		if (s->configmap && strncmp(s->path, prefix, strlen(prefix)) == 0)
			s->seen = false;
	if (!wanted)
		data = NULL;
	cJSON_ArrayForEach(d, data)
	{
		char *path, *cfg;
		const char *settings;
		uint64_t h;

		if (!cJSON_IsString(d) || !is_plugin_file(d->string))
			continue;
		path = ks_xasprintf("%s%s", prefix, d->string);
		s = find_slot(l, path);
		if (!s) {
			s = ks_xcalloc(1, sizeof(*s));
			s->path = path;
			s->configmap = true;
			s->next = l->slots;
			l->slots = s;
		} else {
			free(path);
		}
		s->seen = true;
		cfg = ks_candidate_settings_name(d->string);
		settings = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, cfg));
		free(cfg);
		h = ks_hash(d->valuestring, strlen(d->valuestring)) * 31 +
		    (settings ? ks_hash(settings, strlen(settings)) : 0);
		if (s->b && h == s->text_hash)
			continue;
		s->text_hash = h;
		load_text(l, s,
			  &(struct ks_candidate){ .name = d->string,
						  .src = d->valuestring,
						  .len = strlen(d->valuestring),
						  .settings = settings,
						  .settings_len = settings ? strlen(settings) : 0 },
			  obj);
	}
	/* Keys (or the whole ConfigMap, or its label) gone: retire their plugins. */
	for (struct slot **pp = &l->slots; (s = *pp) != NULL;) {
		if (s->configmap && !s->seen && strncmp(s->path, prefix, strlen(prefix)) == 0) {
			*pp = s->next;
			ks_plugin_metrics_removed(l->pm, s->path);
			if (s->b) {
				ks_info("plugin removed", "source=%s", s->path);
				ks_binding_retire(l, s->b,
						  "the plugin's ConfigMap key was removed");
			}
			free(s->path);
			free(s);
			continue;
		}
		pp = &s->next;
	}
	free(prefix);
	unshadow(l);
}

static void cm_event(const struct ks_cache_obj *o, void *data, bool gone)
{
	struct ks_loader *l = data;
	cJSON *v = gone ? NULL : ks_json_parse(o->json, o->len);

	if (!l->stopping)
		configmap_changed(l, o->key, v);
	cJSON_Delete(v);
}

static void cm_add(const struct ks_cache_obj *o, void *data)
{
	cm_event(o, data, false);
}

static void cm_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	(void)old;
	cm_event(o, data, false);
}

static void cm_delete(const struct ks_cache_obj *o, void *data)
{
	cm_event(o, data, true);
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
	scan(l);
	if (o->configmap_namespace) {
		l->cm_manager = ks_manager_new(loop, o->kube, o->configmap_namespace);
		l->cm_cache = ks_manager_cache(l->cm_manager, &configmaps);
		l->cm_h = (struct ks_cache_handler){ cm_add, cm_update, cm_delete, l };
		ks_cache_add_handler(l->cm_cache, &l->cm_h);
	}
	return l;
}

void ks_loader_start(struct ks_loader *l)
{
	uint64_t ms = (uint64_t)(l->o.poll_seconds * 1000);

	l->started = true;
	if (l->cm_manager && !ks_manager_synced(l->cm_manager, &configmaps)) {
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
		l->fs_watching = uv_fs_event_start(&l->fs_event, dir_changed, l->dir, 0) == 0;
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
