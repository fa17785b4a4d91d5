#pragma once
/*
 * dryrun_plugin.h: `kupenstack plugin run FILE --dry-run`: one plugin against a live cluster,
 * where reads happen (the caches' LIST and watch, kube.get/list/fetch, HTTP GETs) and
 * every write is printed on stdout (dryrun.h) instead: the status and finalizer patches
 * the host would make, kube.apply/create/patch/delete, Events, and every other HTTP
 * request, which the plugin gets back as the error "dry-run: METHOD URL not sent"
 * (requests marked changes_nothing, as the OpenStack library marks its login, are sent:
 * without a token no read could happen).
 */
#include <stdbool.h>
#include <stddef.h>

#include "lua/engine.h"

struct ks_lua_dryrun_opts {
	const char *file;	/* the plugin */
	const char *kubeconfig; /* NULL: in-cluster */
	const char *context;
	const char *namespace; /* NULL: all namespaces */
	const char *stdlib_dir;
	const struct ks_setting *settings; /* ks.core.config, n of them; not owned */
	size_t nsettings;
	bool once; /* reconcile every object once (after the caches sync), then return */
};

/* Run until SIGINT/SIGTERM (or, once, until every object was reconciled). Returns the
 * exit status: 0; 1 when the plugin does not load, the cluster cannot be reached, or
 * (once) a reconcile failed. Says why on stderr. */
int ks_lua_dryrun(const struct ks_lua_dryrun_opts *o);
