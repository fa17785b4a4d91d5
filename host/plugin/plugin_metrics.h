#pragma once
/*
 * plugin_metrics.h: the series that say which plugins a host runs, for dashboards and
 * `kupenstack plugin status`, kept by the loader at each load, refusal and removal:
 *
 *   kupenstack_plugin_info{plugin,kind,group,source,state}  1 for the current state
 *       ("loaded", or "refused": the last version did not load; kind and group are the
 *       running version's, empty when none runs), 0 for the states it left
 *   kupenstack_plugin_load_errors_total{plugin}             versions refused
 *   kupenstack_plugin_reloads_total{plugin}                 versions that replaced another
 *   kupenstack_plugin_memory_bytes{plugin}                  the running state's bytes
 *   kupenstack_plugin_loaded_timestamp_seconds{plugin}      when the running version
 *                                                           loaded (Unix time; 0: none)
 *   kupenstack_plugin_last_error_info{plugin,error}         1 for the last refusal's message
 *
 * plugin is the file name (or ConfigMap key), source the file's path or
 * "configmap:NS/NAME/KEY".
 */
#include <stddef.h>

struct ks_metrics;
struct ks_plugin;
struct ks_plugin_metrics;

/* Register the families in m (NULL: every call below does nothing). Never NULL. */
struct ks_plugin_metrics *ks_plugin_metrics_new(struct ks_metrics *m);
void ks_plugin_metrics_free(struct ks_plugin_metrics *pm);
/* Version p of source runs now; reload: it replaced a running one. */
void ks_plugin_metrics_loaded(struct ks_plugin_metrics *pm, const char *source,
			      const struct ks_plugin *p, bool reload);
/* A version of source was refused with error; running is the version that goes on
 * running, or NULL. */
void ks_plugin_metrics_refused(struct ks_plugin_metrics *pm, const char *source,
			       const struct ks_plugin *running, const char *error);
/* source is gone: its series drop to 0. */
void ks_plugin_metrics_removed(struct ks_plugin_metrics *pm, const char *source);
/* The running state of source holds bytes now. */
void ks_plugin_metrics_memory(struct ks_plugin_metrics *pm, const char *source, size_t bytes);
