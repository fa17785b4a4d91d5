/*
 * plugin_metrics.c: the kupenstack_plugin_* series of the loaded plugins.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ks.h"
#include "plugin/plugin.h"
#include "plugin/plugin_metrics.h"
#include "metrics.h"

#define MAX_ERROR 200

/* What the info series of one source says now, to set it to 0 when it changes. */
struct entry {
	char *source, *kind, *group, *state, *error;
	struct entry *next;
};

struct ks_plugin_metrics {
	struct ks_metrics *m;
	struct ks_metric_family *info, *errors, *reloads, *memory, *loaded_at, *last_error;
	struct entry *entries;
};

struct ks_plugin_metrics *ks_plugin_metrics_new(struct ks_metrics *m)
{
	struct ks_plugin_metrics *pm = ks_xcalloc(1, sizeof(*pm));

	pm->m = m;
	if (!m)
		return pm;
	pm->info = ks_metrics_gauge(m, "kupenstack_plugin_info",
				    "The plugins of this host: 1 for each one's current state.",
				    KS_LABELS("plugin", "kind", "group", "source", "state"));
	pm->errors = ks_metrics_counter(m, "kupenstack_plugin_load_errors_total",
					"Plugin versions refused at load.", KS_LABELS("plugin"));
	pm->reloads = ks_metrics_counter(m, "kupenstack_plugin_reloads_total",
					 "Plugin versions that replaced a running one.",
					 KS_LABELS("plugin"));
	pm->memory = ks_metrics_gauge(m, "kupenstack_plugin_memory_bytes",
				      "Bytes held by the running version's Lua state.",
				      KS_LABELS("plugin"));
	pm->loaded_at = ks_metrics_gauge(
		m, "kupenstack_plugin_loaded_timestamp_seconds",
		"When the running version loaded (Unix time; 0: none runs).", KS_LABELS("plugin"));
	pm->last_error = ks_metrics_gauge(m, "kupenstack_plugin_last_error_info",
					  "The message of the last refusal: 1 for the current one.",
					  KS_LABELS("plugin", "error"));
	return pm;
}

static void entry_free(struct entry *e)
{
	free(e->source);
	free(e->kind);
	free(e->group);
	free(e->state);
	free(e->error);
	free(e);
}

void ks_plugin_metrics_free(struct ks_plugin_metrics *pm)
{
	struct entry *e, *next;

	if (!pm)
		return;
	for (e = pm->entries; e; e = next) {
		next = e->next;
		entry_free(e);
	}
	free(pm);
}

static const char *name_of(const char *source)
{
	const char *s = strrchr(source, '/');

	return s ? s + 1 : source;
}

static struct entry *entry_of(struct ks_plugin_metrics *pm, const char *source)
{
	struct entry *e;

	for (e = pm->entries; e; e = e->next)
		if (strcmp(e->source, source) == 0)
			return e;
	e = ks_xcalloc(1, sizeof(*e));
	e->source = ks_xstrdup(source);
	e->next = pm->entries;
	pm->entries = e;
	return e;
}

static struct ks_metric *one(struct ks_metric_family *f, const char *source)
{
	return ks_metric_child(f, KS_LABELS(name_of(source)));
}

/* Point the info series of e at kind, group, state (NULL state: none). */
static void set_info(struct ks_plugin_metrics *pm, struct entry *e, const char *kind,
		     const char *group, const char *state)
{
	const char *plugin = name_of(e->source);

	if (e->state)
		ks_metric_set(ks_metric_child(pm->info, KS_LABELS(plugin, e->kind, e->group,
								  e->source, e->state)),
			      0);
	free(e->kind);
	free(e->group);
	free(e->state);
	e->kind = ks_xstrdup(kind);
	e->group = ks_xstrdup(group);
	e->state = state ? ks_xstrdup(state) : NULL;
	if (state)
		ks_metric_set(
			ks_metric_child(pm->info, KS_LABELS(plugin, kind, group, e->source, state)),
			1);
}

void ks_plugin_metrics_loaded(struct ks_plugin_metrics *pm, const char *source,
			      const struct ks_plugin *p, bool reload)
{
	struct entry *e;

	if (!pm->m)
		return;
	e = entry_of(pm, source);
	set_info(pm, e, p->self.kind, p->self.group, "loaded");
	if (reload)
		ks_metric_inc(one(pm->reloads, source));
	one(pm->errors, source); /* at 0 from the start, as client_golang users expect */
	ks_metric_set(one(pm->loaded_at, source), ks_wall());
	ks_metric_set(one(pm->memory, source), (double)ks_lua_memory(p->lua));
}

void ks_plugin_metrics_refused(struct ks_plugin_metrics *pm, const char *source,
			       const struct ks_plugin *running, const char *error)
{
	struct entry *e;
	char msg[MAX_ERROR + 4];

	if (!pm->m)
		return;
	e = entry_of(pm, source);
	set_info(pm, e, running ? running->self.kind : "", running ? running->self.group : "",
		 "refused");
	ks_metric_inc(one(pm->errors, source));
	one(pm->reloads, source);
	if (!running)
		ks_metric_set(one(pm->loaded_at, source), 0);
	snprintf(msg, sizeof(msg), "%.*s%s", MAX_ERROR, error ? error : "",
		 error && strlen(error) > MAX_ERROR ? "..." : "");
	if (e->error)
		ks_metric_set(ks_metric_child(pm->last_error, KS_LABELS(name_of(source), e->error)),
			      0);
	free(e->error);
	e->error = ks_xstrdup(msg);
	ks_metric_set(ks_metric_child(pm->last_error, KS_LABELS(name_of(source), msg)), 1);
}

void ks_plugin_metrics_removed(struct ks_plugin_metrics *pm, const char *source)
{
	struct entry *e;

	if (!pm->m)
		return;
	e = entry_of(pm, source);
	set_info(pm, e, "", "", NULL);
	ks_metric_set(one(pm->memory, source), 0);
	ks_metric_set(one(pm->loaded_at, source), 0);
	if (e->error)
		ks_metric_set(ks_metric_child(pm->last_error, KS_LABELS(name_of(source), e->error)),
			      0);
}

void ks_plugin_metrics_memory(struct ks_plugin_metrics *pm, const char *source, size_t bytes)
{
	if (pm->m)
		ks_metric_set(one(pm->memory, source), (double)bytes);
}
