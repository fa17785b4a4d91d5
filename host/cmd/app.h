#pragma once
/*
 * app.h: `kupenstack run`: the operator process. Connects to the API server, serves
 * /metrics /healthz /readyz, loads the plugins behind their controllers, optionally
 * elects a leader, and on SIGTERM drains in-flight work, releases the lease and
 * returns 0.
 */
#include <stdbool.h>

#include "admission/admission.h"
#include "lua/engine.h"

struct ks_app_opts {
	const char *kubeconfig; /* NULL: in-cluster */
	const char *context;
	const char *namespace;		/* watch scope; NULL: all namespaces */
	const char *plugins_dir;	/* a directory of plugins, or NULL */
	const char *plugins_configmaps; /* a namespace of plugin ConfigMaps, or NULL */
	const char *stdlib_dir;		/* the Lua library */
	const char *metrics_addr;	/* "127.0.0.1:8080"; NULL: no server */
	bool leader_elect;
	const char *lease_namespace;			     /* NULL: "kupenstack-system" */
	const char *lease_name;				     /* NULL: "kupenstack" */
	double lease_duration, renew_deadline, retry_period; /* 0: 15, 10, 2 */
	unsigned concurrency;				     /* 0: each plugin's own */
	double resync; /* seconds between full resyncs; 0: each plugin's own */
	/* The operator's settings for the plugins (ks.core.config); not owned. */
	const struct ks_setting *settings;
	size_t nsettings;
	const char *amqp_url; /* the message bus of plugins' 'consumes'; NULL: none */
	double drain_seconds; /* SIGTERM waits this long for in-flight work; 0: 30 */
	/* Caps on the limits plugins declare (and run their top level under); 0: none. */
	double plugin_max_memory_mb, plugin_max_instructions, plugin_max_seconds;
	/* The admission webhooks (host/admission/); admission.addr NULL: none. */
	struct ks_admission_opts admission;
};

/* Run until SIGTERM/SIGINT. Returns the exit status; setup errors print one line. */
int ks_app_run(const struct ks_app_opts *o);
