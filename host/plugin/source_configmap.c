/*
 * source_configmap.c: the loader's ConfigMap plugins, the *.lua keys of ConfigMaps
 * labelled kupenstack.io/plugin=true in one namespace, watched: a key added or edited
 * loads, a key (or its ConfigMap, or its label) gone retires its plugin.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "log.h"
#include "plugin/candidate.h"
#include "plugin/loader_impl.h"
#include "plugin/plugin_metrics.h"

static const struct ks_kube_res configmaps = { "", "v1", "configmaps", true };

/* Have the plugin ConfigMaps been listed? Warns every 10 s while they have not. */
bool ks_loader_configmaps_listed(struct ks_loader *l)
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
		char *cfg;
		const char *settings;
		uint64_t h;

		if (!cJSON_IsString(d) || !ks_loader_is_plugin_file(d->string))
			continue;
		s = ks_loader_slot(l, ks_xasprintf("%s%s", prefix, d->string), true);
		cfg = ks_candidate_settings_name(d->string);
		settings = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, cfg));
		free(cfg);
		h = ks_hash(d->valuestring, strlen(d->valuestring)) * 31 +
		    (settings ? ks_hash(settings, strlen(settings)) : 0);
		if (s->b && h == s->text_hash)
			continue;
		s->text_hash = h;
		ks_loader_load_text(
			l, s,
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
			ks_loader_cancel_vet(l, s);
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
	ks_loader_unshadow(l);
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

bool ks_loader_configmaps_synced(struct ks_loader *l)
{
	return ks_manager_synced(l->cm_manager, &configmaps);
}

void ks_loader_watch_configmaps(struct ks_loader *l)
{
	l->cm_manager = ks_manager_new(l->loop, l->o.kube, l->o.configmap_namespace);
	l->cm_cache = ks_manager_cache(l->cm_manager, &configmaps);
	l->cm_h = (struct ks_cache_handler){ cm_add, cm_update, cm_delete, l };
	ks_cache_add_handler(l->cm_cache, &l->cm_h);
}
