#pragma once
/*
 * metrics.h: the Prometheus side of the operator. A registry of counters,
 * gauges and histograms with label sets, rendered in the text exposition format
 * 0.0.4 exactly as client_golang writes it (metrics.c), and the ops endpoints /metrics,
 * /healthz and /readyz, served on the libuv loop by host/serve.c (metrics_server.c).
 *
 * The standard series (metrics_std.c) are controller-runtime's and client-go's families
 * under their exact names and buckets (reconcile, workqueue, REST client), so that
 * existing dashboards and alerts work unchanged; each is registered in a registry when
 * first used there. Our own families are named kupenstack_*. A family with no children
 * is not rendered, as in client_golang.
 *
 * The host is single-threaded: nothing here locks. Updates through a NULL
 * struct ks_metric * are no-ops, so a unit can run without metrics.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ks.h"

enum ks_metric_type {
	KS_METRIC_COUNTER,
	KS_METRIC_GAUGE,
	KS_METRIC_HISTOGRAM,
};

/* The result label of controller_runtime_reconcile_total. */
enum ks_reconcile_result {
	KS_RECONCILE_SUCCESS,
	KS_RECONCILE_ERROR,
	KS_RECONCILE_REQUEUE,
	KS_RECONCILE_REQUEUE_AFTER,
};

struct ks_metrics;	 /* a registry */
struct ks_metric_family; /* one metric name: type, help, label names, buckets */
struct ks_metric;	 /* one child of a family: its value at one set of label values */

/* Called before every render, to refresh gauges computed on demand. */
typedef void (*ks_metrics_collect_cb)(struct ks_metrics *m, void *data);

/* A NULL-terminated label list, e.g. KS_LABELS("controller", "result"). */
#define KS_LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* An empty registry (the standard families join it when first used). Never NULL. */
struct ks_metrics *ks_metrics_new(void);
/*
 * Free the registry, its families and children. Every struct ks_metric * taken
 * from it dangles afterwards: free the queues and servers that use it first.
 */
void ks_metrics_free(struct ks_metrics *m);

/*
 * The process-wide registry units use when not handed one: NULL until the host
 * sets it. Setting it does not transfer ownership; set NULL before freeing it.
 */
void ks_metrics_set_default(struct ks_metrics *m);
struct ks_metrics *ks_metrics_default(void);

/*
 * Register a family. labels is NULL-terminated (or NULL for none); everything is
 * copied. Registering again with the same type and labels (and buckets) returns
 * the existing family. Returns NULL when the name or a label name is not valid
 * Prometheus, or it clashes with a family already registered: a caller bug.
 */
struct ks_metric_family *ks_metrics_counter(struct ks_metrics *m, const char *name,
					    const char *help, const char *const *labels);
struct ks_metric_family *ks_metrics_gauge(struct ks_metrics *m, const char *name, const char *help,
					  const char *const *labels);
/* buckets: n strictly increasing finite upper bounds; +Inf is implied. */
struct ks_metric_family *ks_metrics_histogram(struct ks_metrics *m, const char *name,
					      const char *help, const char *const *labels,
					      const double *buckets, size_t n);
/* The family registered under name, or NULL. */
struct ks_metric_family *ks_metrics_find(struct ks_metrics *m, const char *name);

/*
 * The child of f at these label values (one per label name; NULL or an empty
 * list when f has no labels), created at zero on first use and then kept for the
 * registry's life. Aborts if the number of values is wrong. NULL f gives NULL.
 */
struct ks_metric *ks_metric_child(struct ks_metric_family *f, const char *const *values);

/* Counter or gauge += 1. */
void ks_metric_inc(struct ks_metric *c);
/* Counter or gauge += v; a counter aborts on v < 0. */
void ks_metric_add(struct ks_metric *c, double v);
/* Gauge = v. */
void ks_metric_set(struct ks_metric *g, double v);
/* Histogram: count v in the first bucket whose bound is >= v, add it to the sum. */
void ks_metric_observe(struct ks_metric *h, double v);
/* Counter or gauge value, or a histogram's sum; 0 for NULL. */
double ks_metric_value(const struct ks_metric *c);
/* A histogram's number of observations; 0 for NULL or another type. */
uint64_t ks_metric_count(const struct ks_metric *h);

/*
 * Run cb(m, data) before every render. ks_metrics_remove_collector() takes the
 * same pair away again (a no-op if it is not there).
 */
void ks_metrics_add_collector(struct ks_metrics *m, ks_metrics_collect_cb cb, void *data);
void ks_metrics_remove_collector(struct ks_metrics *m, ks_metrics_collect_cb cb, void *data);

/* Append the text exposition format (version 0.0.4) of every family to out. */
void ks_metrics_render(struct ks_metrics *m, struct ks_buf *out);

/*
 * Standard families. Each helper is a no-op on a NULL registry.
 *
 * ks_metrics_controller_init: create controller's reconcile children at zero, as
 * controller-runtime does when a controller starts.
 * ks_metrics_reconcile: one reconcile finished: reconcile_total{controller,result},
 * reconcile_errors_total on KS_RECONCILE_ERROR, reconcile_time_seconds.
 * ks_metrics_rest_request: rest_client_requests_total{code,method,host}; code 0
 * (no response) is counted as "<error>", as client-go does.
 */
void ks_metrics_controller_init(struct ks_metrics *m, const char *controller);
void ks_metrics_reconcile(struct ks_metrics *m, const char *controller,
			  enum ks_reconcile_result result, double seconds);
void ks_metrics_rest_request(struct ks_metrics *m, int code, const char *method, const char *host);

/* The workqueue_* children of one queue, labelled name=<queue name>. */
struct ks_metrics_workqueue {
	struct ks_metric *depth;
	struct ks_metric *adds;
	struct ks_metric *queue_duration;
	struct ks_metric *work_duration;
	struct ks_metric *retries;
	struct ks_metric *unfinished_work;
	struct ks_metric *longest_running;
};

/* Fill wq with name's children of m's workqueue families; all NULL if m is NULL. */
void ks_metrics_workqueue_init(struct ks_metrics *m, const char *name,
			       struct ks_metrics_workqueue *wq);

/*
 * The ops HTTP server: GET (or HEAD) /metrics, /healthz ("ok" while the loop
 * runs) and /readyz (200 or 503 as the ready callback says), 404 for other
 * paths, 405 for other methods. HTTP/1.1 with keep-alive and pipelining; a
 * request head over max_header bytes gets 431 and the connection is closed; a
 * connection that does not complete a request and read its response within
 * idle_timeout_ms of the previous one (or of connecting) is closed.
 */
struct ks_metrics_server;

/*
 * Readiness: return true when ready. May write a short reason (NUL-terminated,
 * at most cap bytes) that becomes the body; else the body is "ok" or "not ready".
 */
typedef bool (*ks_metrics_ready_cb)(void *data, char *reason, size_t cap);

struct ks_metrics_server_opts {
	struct ks_metrics *metrics; /* NULL: ks_metrics_default() at each request */
	ks_metrics_ready_cb ready;  /* NULL: always ready */
	void *ready_data;
	unsigned idle_timeout_ms; /* 0: 30000 */
	size_t max_header;	  /* 0: 8192 */
	size_t max_conns;	  /* 0: 256; connections beyond are closed at once */
};

/*
 * Listen on addr, "host:port" ("127.0.0.1:8080", "[::1]:0", ":8080" for every
 * IPv4 address; port 0 picks a free one, see ks_metrics_server_port()). opts may
 * be NULL and is copied. Returns 0 and sets *out, or -EINVAL (a bad address),
 * -EADDRINUSE, -EACCES or another -errno from the socket calls; on error *out is
 * untouched and what was allocated is freed once the loop runs again.
 */
int ks_metrics_server_start(uv_loop_t *loop, const char *addr,
			    const struct ks_metrics_server_opts *opts,
			    struct ks_metrics_server **out);
/* Change the readiness callback. */
void ks_metrics_server_set_ready(struct ks_metrics_server *s, ks_metrics_ready_cb cb, void *data);
/* The port listened on. */
int ks_metrics_server_port(const struct ks_metrics_server *s);
/* Connections open now (for tests). */
size_t ks_metrics_server_conns(const struct ks_metrics_server *s);
/*
 * Stop listening and close every connection, responses in progress included.
 * The server is freed by the close callbacks, so the loop must run for that to
 * finish; s must not be used after this call.
 */
void ks_metrics_server_stop(struct ks_metrics_server *s);
