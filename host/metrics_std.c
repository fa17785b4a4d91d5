/*
 * metrics_std.c: the series every controller-runtime operator exports, with the names,
 * labels and buckets of controller-runtime and client-go (so dashboards made for them
 * work): reconciles, the work queue, and REST client requests. Each family is registered
 * in a registry the first time it is used there (a family without children is not
 * rendered, so nothing shows before).
 */
#include <stdio.h>
#include <string.h>

#include "metrics.h"

enum std_family {
	RECONCILE_TOTAL,
	RECONCILE_ERRORS,
	RECONCILE_TIME,
	WQ_DEPTH,
	WQ_ADDS,
	WQ_QUEUE_DURATION,
	WQ_WORK_DURATION,
	WQ_RETRIES,
	WQ_UNFINISHED,
	WQ_LONGEST,
	REST_REQUESTS,
	NSTD,
};

static const double reconcile_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1,	0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
	0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,	4.5, 5,
	6,     7,    8,	    9,	  10,	15,   20,   25,	  30,  40,   50,  60,
};

/* client-go's ExponentialBuckets(10e-9, 10, 10): 1e-08 .. 10. */
static const double workqueue_buckets[] = {
	1e-08, 1e-07, 1e-06, 1e-05, 1e-04, 1e-03, 1e-02, 1e-01, 1, 10,
};

struct spec {
	enum ks_metric_type type;
	const char *name, *help;
	const char *const *labels;
	const double *bounds;
	size_t nbounds;
};

#define WQ KS_LABELS("name")

static const struct spec specs[NSTD] = {
	[RECONCILE_TOTAL] = { KS_METRIC_COUNTER, "controller_runtime_reconcile_total",
			      "Total number of reconciliations per controller",
			      KS_LABELS("controller", "result") },
	[RECONCILE_ERRORS] = { KS_METRIC_COUNTER, "controller_runtime_reconcile_errors_total",
			       "Total number of reconciliation errors per controller",
			       KS_LABELS("controller") },
	[RECONCILE_TIME] = { KS_METRIC_HISTOGRAM, "controller_runtime_reconcile_time_seconds",
			     "Length of time per reconciliation per controller",
			     KS_LABELS("controller"), reconcile_buckets,
			     KS_ARRAY_SIZE(reconcile_buckets) },
	[WQ_DEPTH] = { KS_METRIC_GAUGE, "workqueue_depth", "Current depth of workqueue", WQ },
	[WQ_ADDS] = { KS_METRIC_COUNTER, "workqueue_adds_total",
		      "Total number of adds handled by workqueue", WQ },
	[WQ_QUEUE_DURATION] = { KS_METRIC_HISTOGRAM, "workqueue_queue_duration_seconds",
				"How long in seconds an item stays in workqueue before being "
				"requested",
				WQ, workqueue_buckets, KS_ARRAY_SIZE(workqueue_buckets) },
	[WQ_WORK_DURATION] = { KS_METRIC_HISTOGRAM, "workqueue_work_duration_seconds",
			       "How long in seconds processing an item from workqueue takes.", WQ,
			       workqueue_buckets, KS_ARRAY_SIZE(workqueue_buckets) },
	[WQ_RETRIES] = { KS_METRIC_COUNTER, "workqueue_retries_total",
			 "Total number of retries handled by workqueue", WQ },
	[WQ_UNFINISHED] = { KS_METRIC_GAUGE, "workqueue_unfinished_work_seconds",
			    "How many seconds of work has been done that is in progress and "
			    "hasn't been observed by work_duration. Large values indicate stuck "
			    "threads. One can deduce the number of stuck threads by observing the "
			    "rate at which this increases.",
			    WQ },
	[WQ_LONGEST] = { KS_METRIC_GAUGE, "workqueue_longest_running_processor_seconds",
			 "How many seconds has the longest running processor for workqueue been "
			 "running.",
			 WQ },
	[REST_REQUESTS] = { KS_METRIC_COUNTER, "rest_client_requests_total",
			    "Number of HTTP requests, partitioned by status code, method, and "
			    "host.",
			    KS_LABELS("code", "method", "host") },
};

/* The family i of m, registered on first use. */
static struct ks_metric_family *family(struct ks_metrics *m, enum std_family i)
{
	const struct spec *s = &specs[i];
	struct ks_metric_family *f = ks_metrics_find(m, s->name);

	if (f)
		return f;
	switch (s->type) {
	case KS_METRIC_COUNTER:
		f = ks_metrics_counter(m, s->name, s->help, s->labels);
		break;
	case KS_METRIC_GAUGE:
		f = ks_metrics_gauge(m, s->name, s->help, s->labels);
		break;
	case KS_METRIC_HISTOGRAM:
		f = ks_metrics_histogram(m, s->name, s->help, s->labels, s->bounds, s->nbounds);
		break;
	}
	ks_require(f);
	return f;
}

static const char *const results[] = { "success", "error", "requeue", "requeue_after" };

void ks_metrics_controller_init(struct ks_metrics *m, const char *controller)
{
	if (!m)
		return;
	for (size_t i = 0; i < KS_ARRAY_SIZE(results); i++)
		ks_metric_child(family(m, RECONCILE_TOTAL), KS_LABELS(controller, results[i]));
	ks_metric_child(family(m, RECONCILE_ERRORS), KS_LABELS(controller));
	ks_metric_child(family(m, RECONCILE_TIME), KS_LABELS(controller));
}

void ks_metrics_reconcile(struct ks_metrics *m, const char *controller,
			  enum ks_reconcile_result result, double seconds)
{
	if (!m)
		return;
	ks_require((size_t)result < KS_ARRAY_SIZE(results));
	ks_metric_inc(ks_metric_child(family(m, RECONCILE_TOTAL),
				      KS_LABELS(controller, results[result])));
	if (result == KS_RECONCILE_ERROR)
		ks_metric_inc(ks_metric_child(family(m, RECONCILE_ERRORS), KS_LABELS(controller)));
	ks_metric_observe(ks_metric_child(family(m, RECONCILE_TIME), KS_LABELS(controller)),
			  seconds);
}

void ks_metrics_rest_request(struct ks_metrics *m, int code, const char *method, const char *host)
{
	char buf[16];

	if (!m)
		return;
	if (code > 0)
		snprintf(buf, sizeof(buf), "%d", code);
	else
		snprintf(buf, sizeof(buf), "<error>");
	ks_metric_inc(ks_metric_child(family(m, REST_REQUESTS), KS_LABELS(buf, method, host)));
}

void ks_metrics_workqueue_init(struct ks_metrics *m, const char *name,
			       struct ks_metrics_workqueue *wq)
{
	const char *const *v = KS_LABELS(name);

	memset(wq, 0, sizeof(*wq));
	if (!m)
		return;
	wq->depth = ks_metric_child(family(m, WQ_DEPTH), v);
	wq->adds = ks_metric_child(family(m, WQ_ADDS), v);
	wq->queue_duration = ks_metric_child(family(m, WQ_QUEUE_DURATION), v);
	wq->work_duration = ks_metric_child(family(m, WQ_WORK_DURATION), v);
	wq->retries = ks_metric_child(family(m, WQ_RETRIES), v);
	wq->unfinished_work = ks_metric_child(family(m, WQ_UNFINISHED), v);
	wq->longest_running = ks_metric_child(family(m, WQ_LONGEST), v);
}
