/*
 * app.c: wiring the operator together and taking it apart in order.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/app.h"
#include "cmd/vet.h"
#include "event.h"
#include "http.h"
#include "ks.h"
#include "kube.h"
#include "kubeconfig.h"
#include "lease.h"
#include "log.h"
#include "plugin/loader.h"
#include "manager.h"
#include "metrics.h"

struct app {
	const struct ks_app_opts *o;
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t drain_timer;
	struct ks_http *http;
	struct ks_kube *kube;
	struct ks_metrics *metrics;
	struct ks_metrics_server *server;
	struct ks_events *events;
	struct ks_manager *manager;
	struct ks_loader *loader;
	struct ks_lease *lease;
	struct ks_admission *admission;
	bool stopping, probed;
	int status;
};

static void observe(const char *method, long code, double seconds, void *data)
{
	struct app *a = data;

	(void)seconds;
	ks_metrics_rest_request(a->metrics, (int)code, method, "kube-apiserver");
}

static bool ready(void *data, char *why, size_t cap)
{
	struct app *a = data;

	if (a->stopping) {
		snprintf(why, cap, "stopping");
		return false;
	}
	return ks_manager_all_synced(a->manager, why, cap) &&
	       ks_loader_consumers_ready(a->loader, why, cap);
}

static void close_all(struct app *a)
{
	ks_admission_free(a->admission);
	a->admission = NULL;
	ks_loader_free(a->loader);
	a->loader = NULL;
	ks_lease_free(a->lease);
	a->lease = NULL;
	ks_manager_free(a->manager);
	a->manager = NULL;
	ks_events_free(a->events);
	a->events = NULL;
	if (a->server)
		ks_metrics_server_stop(a->server);
	a->server = NULL;
	ks_kube_free(a->kube);
	a->kube = NULL;
	ks_http_free(a->http);
	a->http = NULL;
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->drain_timer, NULL);
}

static void released(struct ks_lease *l, void *data)
{
	(void)l;
	ks_info("stopped", "status=%d", ((struct app *)data)->status);
	close_all(data);
}

static void drained(void *data)
{
	struct app *a = data;

	uv_timer_stop(&a->drain_timer);
	if (a->lease && ks_lease_leading(a->lease)) {
		ks_lease_release(a->lease, released, a);
		return;
	}
	released(NULL, a);
}

static void drain_timeout(uv_timer_t *t)
{
	struct app *a = t->data;

	ks_warn("in-flight work did not finish in time; stopping anyway", "seconds=%.0f",
		a->o->drain_seconds > 0 ? a->o->drain_seconds : 30.0);
	drained(a);
}

static void stop(struct app *a, int status)
{
	double secs = a->o->drain_seconds > 0 ? a->o->drain_seconds : 30;

	if (a->stopping)
		return;
	a->stopping = true;
	a->status = status;
	ks_info("stopping: draining in-flight work", "seconds=%.0f", secs);
	uv_timer_start(&a->drain_timer, drain_timeout, (uint64_t)(secs * 1000), 0);
	ks_loader_stop(a->loader, drained, a);
}

static void on_signal(uv_signal_t *s, int signum)
{
	ks_info("signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(s->data, 0);
}

static void started_leading(struct ks_lease *l, void *data)
{
	struct app *a = data;

	ks_info("leading: starting controllers", "identity=%s", ks_lease_identity(l));
	if (!a->stopping)
		ks_loader_start(a->loader);
}

/* Leadership lost while running: stop writing at once (the lease will expire for the
 * others only after we have stopped), as controller-runtime does, by exiting. */
static void stopped_leading(struct ks_lease *l, void *data)
{
	struct app *a = data;

	if (a->stopping)
		return;
	ks_err("lost leadership: exiting so that there is never a second writer", "identity=%s",
	       ks_lease_identity(l));
	exit(1);
}

static void probed(struct ks_kube_result *res, void *data)
{
	struct app *a = data;

	a->probed = true;
	if (res->code == 0) {
		fprintf(stderr, "kupenstack: cannot reach the API server %s: %s\n",
			ks_kube_config(a->kube)->server, res->message);
		a->status = 1;
		uv_stop(a->loop);
		return;
	}
	if (a->o->admission.addr) /* every replica serves: admission writes nothing */
		a->admission = ks_admission_new(a->loop, a->kube, a->events, &a->o->admission);
	if (a->o->leader_elect) {
		a->lease = ks_lease_new(
			a->loop, a->kube,
			&(struct ks_lease_opts){
				.namespace = a->o->lease_namespace ? a->o->lease_namespace
								   : "kupenstack-system",
				.name = a->o->lease_name ? a->o->lease_name : "kupenstack",
				.lease_duration = a->o->lease_duration,
				.renew_deadline = a->o->renew_deadline,
				.retry_period = a->o->retry_period,
				.on_started = started_leading,
				.on_stopped = stopped_leading,
				.data = a,
			});
		ks_lease_start(a->lease);
	} else {
		ks_loader_start(a->loader);
	}
}

/* The operator's caps on plugin limits; a plugin's run may hold the loop for half the
 * watchdog's bound (lease.h), so the sandbox stops it before the watchdog would fire. */
static struct ks_lua_limits plugin_caps(const struct ks_app_opts *o)
{
	return (struct ks_lua_limits){
		.memory = (size_t)(o->plugin_max_memory_mb * 1048576),
		.instructions = (uint64_t)o->plugin_max_instructions,
		.seconds = o->plugin_max_seconds,
		.slice = ks_lease_loop_bound(o->renew_deadline) / 2,
	};
}

static int setup(struct app *a, struct ks_kubeconfig *cfg)
{
	const struct ks_app_opts *o = a->o;
	int rc;

	a->http = ks_http_new(a->loop);
	a->kube = ks_kube_new(a->http, cfg);
	a->metrics = ks_metrics_new();
	ks_metrics_set_default(a->metrics);
	ks_kube_set_observer(a->kube, observe, a);
	if (o->metrics_addr) {
		rc = ks_metrics_server_start(a->loop, o->metrics_addr,
					     &(struct ks_metrics_server_opts){
						     .metrics = a->metrics,
						     .ready = ready,
						     .ready_data = a,
					     },
					     &a->server);
		if (rc != 0) {
			fprintf(stderr, "kupenstack: --metrics-addr %s: %s\n", o->metrics_addr,
				uv_strerror(rc));
			return 1;
		}
	}
	a->events = ks_events_new(a->loop, a->kube, NULL);
	a->manager = ks_manager_new(a->loop, a->kube, o->namespace);
	a->loader = ks_loader_new(a->loop, &(struct ks_loader_opts){
						   .dir = o->plugins_dir,
						   .configmap_namespace = o->plugins_configmaps,
						   .concurrency = o->concurrency,
						   .resync = o->resync,
						   .host = {
							   .loop = a->loop,
							   .http = a->http,
							   .kube = a->kube,
							   .events = a->events,
							   .metrics = a->metrics,
							   .stdlib_dir = o->stdlib_dir,
							   .settings = o->settings,
							   .nsettings = o->nsettings,
							   .caps = plugin_caps(o),
						   },
						   .amqp_url = o->amqp_url,
						   .vet = ks_cmd_vetter,
						   .manager = a->manager,
						   .kube = a->kube,
						   .events = a->events,
						   .metrics = a->metrics,
					   });
	return 0;
}

int ks_app_run(const struct ks_app_opts *o)
{
	struct app a = { .o = o, .loop = uv_default_loop() };
	struct ks_kubeconfig cfg;
	char *err = NULL;
	int rc;

	rc = o->kubeconfig ? ks_kubeconfig_load(&cfg, o->kubeconfig, o->context, &err)
			   : ks_kubeconfig_in_cluster(&cfg, NULL, &err);
	if (rc != 0) {
		fprintf(stderr, "kupenstack: %s\n", err);
		free(err);
		return 1;
	}
	uv_signal_init(a.loop, &a.sigint);
	uv_signal_init(a.loop, &a.sigterm);
	uv_timer_init(a.loop, &a.drain_timer);
	a.sigint.data = a.sigterm.data = a.drain_timer.data = &a;
	rc = setup(&a, &cfg);
	ks_kubeconfig_deinit(&cfg);
	if (rc != 0) {
		a.status = rc;
		close_all(&a);
		uv_run(a.loop, UV_RUN_DEFAULT);
		return rc;
	}
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	ks_kube_request(a.kube, "GET", "/version", NULL, NULL, probed, &a);
	uv_run(a.loop, UV_RUN_DEFAULT);
	if (a.status != 0 && a.http) {
		close_all(&a);
		uv_run(a.loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(a.loop);
	ks_metrics_free(a.metrics);
	return a.status;
}
