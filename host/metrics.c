/* metrics.c: the Prometheus registry and its text exposition (format 0.0.4). */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "map.h"
#include "serve.h"

struct ks_metric {
	struct ks_metric_family *f;
	char **values;
	double value; /* counter, gauge; a histogram's sum */
	uint64_t count;
	uint64_t *counts; /* histogram: per bucket, not cumulative */
};

struct ks_metric_family {
	enum ks_metric_type type;
	char *name;
	char *help;
	char **labels;
	size_t nlabels;
	double *bounds;
	size_t nbounds;
	struct ks_map *index; /* child key -> struct ks_metric * */
	struct ks_metric **children;
	size_t nchildren;
	size_t cap;
};

struct collector {
	ks_metrics_collect_cb cb;
	void *data;
};

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

struct ks_metrics {
	struct ks_map *index; /* name -> struct ks_metric_family * */
	struct ks_metric_family **families;
	size_t nfamilies;
	size_t cap;
	struct collector *collectors;
	size_t ncollectors;
	struct ks_metric_family *std[NSTD];
};

static struct ks_metrics *default_registry;

static const double reconcile_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1,	0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
	0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,	4.5, 5,
	6,     7,    8,	    9,	  10,	15,   20,   25,	  30,  40,   50,  60,
};

/* client-go's ExponentialBuckets(10e-9, 10, 10): 1e-08 .. 10. */
static const double workqueue_buckets[] = {
	1e-08, 1e-07, 1e-06, 1e-05, 1e-04, 1e-03, 1e-02, 1e-01, 1, 10,
};

static bool valid_name(const char *s, bool colon)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')))
			return false;
	}
	return true;
}

static bool valid_labels(const char *const *labels, enum ks_metric_type type)
{
	for (size_t i = 0; labels && labels[i]; i++) {
		if (!valid_name(labels[i], false) || strncmp(labels[i], "__", 2) == 0)
			return false;
		if (type == KS_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0)
			return false;
	}
	return true;
}

static bool same_shape(const struct ks_metric_family *f, enum ks_metric_type type,
		       const char *const *labels, const double *bounds, size_t nbounds)
{
	size_t n = 0;

	if (f->type != type || f->nbounds != nbounds)
		return false;
	for (; labels && labels[n]; n++) {
		if (n >= f->nlabels || strcmp(labels[n], f->labels[n]) != 0)
			return false;
	}
	if (n != f->nlabels)
		return false;
	return nbounds == 0 || memcmp(bounds, f->bounds, nbounds * sizeof(*bounds)) == 0;
}

static struct ks_metric_family *add_family(struct ks_metrics *m, enum ks_metric_type type,
					   const char *name, const char *help,
					   const char *const *labels, const double *bounds,
					   size_t nbounds)
{
	struct ks_metric_family *f = ks_map_get(m->index, name);

	if (f)
		return same_shape(f, type, labels, bounds, nbounds) ? f : NULL;
	if (!valid_name(name, true) || !valid_labels(labels, type))
		return NULL;
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
			return NULL;
	}
	f = ks_xcalloc(1, sizeof(*f));
	f->type = type;
	f->name = ks_xstrdup(name);
	f->help = ks_xstrdup(help ? help : "");
	while (labels && labels[f->nlabels])
		f->nlabels++;
	f->labels = ks_xcalloc(f->nlabels, sizeof(*f->labels));
	for (size_t i = 0; i < f->nlabels; i++)
		f->labels[i] = ks_xstrdup(labels[i]);
	f->nbounds = nbounds;
	f->bounds = ks_xcalloc(nbounds, sizeof(*bounds));
	if (nbounds)
		memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
	f->index = ks_map_new(0);
	if (m->nfamilies == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 32;
		m->families = ks_xrealloc(m->families, m->cap * sizeof(*m->families));
	}
	m->families[m->nfamilies++] = f;
	ks_map_put(m->index, name, f);
	return f;
}

struct ks_metric_family *ks_metrics_counter(struct ks_metrics *m, const char *name,
					    const char *help, const char *const *labels)
{
	return add_family(m, KS_METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct ks_metric_family *ks_metrics_gauge(struct ks_metrics *m, const char *name, const char *help,
					  const char *const *labels)
{
	return add_family(m, KS_METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct ks_metric_family *ks_metrics_histogram(struct ks_metrics *m, const char *name,
					      const char *help, const char *const *labels,
					      const double *buckets, size_t n)
{
	return add_family(m, KS_METRIC_HISTOGRAM, name, help, labels, buckets, n);
}

struct ks_metric_family *ks_metrics_find(struct ks_metrics *m, const char *name)
{
	return ks_map_get(m->index, name);
}

static void register_std(struct ks_metrics *m)
{
	const char *const *wq = KS_LABELS("name");
	struct ks_metric_family **s = m->std;

	s[RECONCILE_TOTAL] = ks_metrics_counter(m, "controller_runtime_reconcile_total",
						"Total number of reconciliations per controller",
						KS_LABELS("controller", "result"));
	s[RECONCILE_ERRORS] = ks_metrics_counter(
		m, "controller_runtime_reconcile_errors_total",
		"Total number of reconciliation errors per controller", KS_LABELS("controller"));
	s[RECONCILE_TIME] = ks_metrics_histogram(m, "controller_runtime_reconcile_time_seconds",
						 "Length of time per reconciliation per controller",
						 KS_LABELS("controller"), reconcile_buckets,
						 KS_ARRAY_SIZE(reconcile_buckets));
	s[WQ_DEPTH] = ks_metrics_gauge(m, "workqueue_depth", "Current depth of workqueue", wq);
	s[WQ_ADDS] = ks_metrics_counter(m, "workqueue_adds_total",
					"Total number of adds handled by workqueue", wq);
	s[WQ_QUEUE_DURATION] = ks_metrics_histogram(
		m, "workqueue_queue_duration_seconds",
		"How long in seconds an item stays in workqueue before being requested", wq,
		workqueue_buckets, KS_ARRAY_SIZE(workqueue_buckets));
	s[WQ_WORK_DURATION] =
		ks_metrics_histogram(m, "workqueue_work_duration_seconds",
				     "How long in seconds processing an item from workqueue takes.",
				     wq, workqueue_buckets, KS_ARRAY_SIZE(workqueue_buckets));
	s[WQ_RETRIES] = ks_metrics_counter(m, "workqueue_retries_total",
					   "Total number of retries handled by workqueue", wq);
	s[WQ_UNFINISHED] = ks_metrics_gauge(
		m, "workqueue_unfinished_work_seconds",
		"How many seconds of work has been done that is in progress and hasn't been "
		"observed by work_duration. Large values indicate stuck threads. One can deduce "
		"the number of stuck threads by observing the rate at which this increases.",
		wq);
	s[WQ_LONGEST] = ks_metrics_gauge(
		m, "workqueue_longest_running_processor_seconds",
		"How many seconds has the longest running processor for workqueue been running.",
		wq);
	s[REST_REQUESTS] = ks_metrics_counter(
		m, "rest_client_requests_total",
		"Number of HTTP requests, partitioned by status code, method, and host.",
		KS_LABELS("code", "method", "host"));
	for (size_t i = 0; i < NSTD; i++)
		ks_require(s[i]);
}

struct ks_metrics *ks_metrics_new(void)
{
	struct ks_metrics *m = ks_xcalloc(1, sizeof(*m));

	m->index = ks_map_new(0);
	register_std(m);
	return m;
}

static void free_family(struct ks_metric_family *f)
{
	for (size_t i = 0; i < f->nchildren; i++) {
		struct ks_metric *c = f->children[i];

		for (size_t j = 0; j < f->nlabels; j++)
			free(c->values[j]);
		free(c->values);
		free(c->counts);
		free(c);
	}
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	ks_map_free(f->index);
	free(f->children);
	free(f->labels);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void ks_metrics_free(struct ks_metrics *m)
{
	if (!m)
		return;
	if (default_registry == m)
		default_registry = NULL;
	for (size_t i = 0; i < m->nfamilies; i++)
		free_family(m->families[i]);
	ks_map_free(m->index);
	free(m->families);
	free(m->collectors);
	free(m);
}

void ks_metrics_set_default(struct ks_metrics *m)
{
	default_registry = m;
}

struct ks_metrics *ks_metrics_default(void)
{
	return default_registry;
}

struct ks_metric *ks_metric_child(struct ks_metric_family *f, const char *const *values)
{
	struct ks_buf key;
	struct ks_metric *c;
	size_t n = 0;

	if (!f)
		return NULL;
	ks_buf_init(&key);
	/* Length-prefixed, so no value can fake a separator. */
	for (; values && values[n]; n++)
		ks_buf_printf(&key, "%zu:%s", strlen(values[n]), values[n]);
	ks_require(n == f->nlabels);
	c = ks_map_get(f->index, key.data ? key.data : "");
	if (!c) {
		c = ks_xcalloc(1, sizeof(*c));
		c->f = f;
		c->values = ks_xcalloc(n, sizeof(*c->values));
		for (size_t i = 0; i < n; i++)
			c->values[i] = ks_xstrdup(values[i]);
		if (f->type == KS_METRIC_HISTOGRAM)
			c->counts = ks_xcalloc(f->nbounds, sizeof(*c->counts));
		ks_map_put(f->index, key.data ? key.data : "", c);
		if (f->nchildren == f->cap) {
			f->cap = f->cap ? f->cap * 2 : 8;
			f->children = ks_xrealloc(f->children, f->cap * sizeof(*f->children));
		}
		f->children[f->nchildren++] = c;
	}
	ks_buf_deinit(&key);
	return c;
}

void ks_metric_inc(struct ks_metric *c)
{
	ks_metric_add(c, 1);
}

void ks_metric_add(struct ks_metric *c, double v)
{
	if (!c)
		return;
	ks_require(c->f->type != KS_METRIC_HISTOGRAM);
	ks_require(c->f->type == KS_METRIC_GAUGE || v >= 0);
	c->value += v;
}

void ks_metric_set(struct ks_metric *g, double v)
{
	if (!g)
		return;
	ks_require(g->f->type == KS_METRIC_GAUGE);
	g->value = v;
}

void ks_metric_observe(struct ks_metric *h, double v)
{
	size_t lo = 0, hi;

	if (!h)
		return;
	ks_require(h->f->type == KS_METRIC_HISTOGRAM);
	/* First bound >= v; v past the last bound only counts towards +Inf. */
	hi = h->f->nbounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->f->bounds[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo < h->f->nbounds)
		h->counts[lo]++;
	h->count++;
	h->value += v;
}

double ks_metric_value(const struct ks_metric *c)
{
	return c ? c->value : 0;
}

uint64_t ks_metric_count(const struct ks_metric *h)
{
	return h && h->f->type == KS_METRIC_HISTOGRAM ? h->count : 0;
}

void ks_metrics_add_collector(struct ks_metrics *m, ks_metrics_collect_cb cb, void *data)
{
	m->collectors = ks_xrealloc(m->collectors, (m->ncollectors + 1) * sizeof(*m->collectors));
	m->collectors[m->ncollectors].cb = cb;
	m->collectors[m->ncollectors].data = data;
	m->ncollectors++;
}

void ks_metrics_remove_collector(struct ks_metrics *m, ks_metrics_collect_cb cb, void *data)
{
	for (size_t i = 0; i < m->ncollectors; i++) {
		if (m->collectors[i].cb == cb && m->collectors[i].data == data) {
			memmove(&m->collectors[i], &m->collectors[i + 1],
				(m->ncollectors - i - 1) * sizeof(*m->collectors));
			m->ncollectors--;
			return;
		}
	}
}

/*
 * A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is what
 * client_golang uses: the shortest digits that read back to v, in %e form when
 * the decimal exponent is < -4 or >= 6 (Go's rule for shortest 'g').
 */
static void put_float(struct ks_buf *out, double v)
{
	char tmp[40];
	int prec, exp;

	if (isnan(v)) {
		ks_buf_puts(out, "NaN");
		return;
	}
	if (isinf(v)) {
		ks_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		ks_buf_puts(out, "0");
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
	exp = atoi(strchr(tmp, 'e') + 1);
	if (exp < -4 || exp >= 6)
		ks_buf_puts(out, tmp);
	else
		ks_buf_printf(out, "%.*f", KS_MAX(prec - 1 - exp, 0), v);
}

/* Escape \ and newline (help), and " too (label values). */
static void put_escaped(struct ks_buf *out, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			ks_buf_puts(out, "\\\\");
		else if (*s == '\n')
			ks_buf_puts(out, "\\n");
		else if (quote && *s == '"')
			ks_buf_puts(out, "\\\"");
		else
			ks_buf_append(out, s, 1);
	}
}

/* name{a="x",b="y"[,le="bound"]} */
static void put_series(struct ks_buf *out, const struct ks_metric *c, const char *suffix,
		       const double *le)
{
	const struct ks_metric_family *f = c->f;

	ks_buf_puts(out, f->name);
	ks_buf_puts(out, suffix);
	if (!f->nlabels && !le)
		return;
	ks_buf_puts(out, "{");
	for (size_t i = 0; i < f->nlabels; i++) {
		ks_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		put_escaped(out, c->values[i], true);
		ks_buf_puts(out, "\"");
	}
	if (le) {
		ks_buf_puts(out, f->nlabels ? ",le=\"" : "le=\"");
		put_float(out, *le);
		ks_buf_puts(out, "\"");
	}
	ks_buf_puts(out, "}");
}

static void render_child(struct ks_buf *out, const struct ks_metric *c)
{
	const struct ks_metric_family *f = c->f;
	const double inf = INFINITY;
	uint64_t cum = 0;

	if (f->type != KS_METRIC_HISTOGRAM) {
		put_series(out, c, "", NULL);
		ks_buf_puts(out, " ");
		put_float(out, c->value);
		ks_buf_puts(out, "\n");
		return;
	}
	for (size_t i = 0; i < f->nbounds; i++) {
		cum += c->counts[i];
		put_series(out, c, "_bucket", &f->bounds[i]);
		ks_buf_printf(out, " %llu\n", (unsigned long long)cum);
	}
	put_series(out, c, "_bucket", &inf);
	ks_buf_printf(out, " %llu\n", (unsigned long long)c->count);
	put_series(out, c, "_sum", NULL);
	ks_buf_puts(out, " ");
	put_float(out, c->value);
	ks_buf_puts(out, "\n");
	put_series(out, c, "_count", NULL);
	ks_buf_printf(out, " %llu\n", (unsigned long long)c->count);
}

void ks_metrics_render(struct ks_metrics *m, struct ks_buf *out)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	for (size_t i = 0; i < m->ncollectors; i++)
		m->collectors[i].cb(m, m->collectors[i].data);
	for (size_t i = 0; i < m->nfamilies; i++) {
		const struct ks_metric_family *f = m->families[i];

		if (!f->nchildren)
			continue;
		ks_buf_printf(out, "# HELP %s ", f->name);
		put_escaped(out, f->help, false);
		ks_buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
		for (size_t j = 0; j < f->nchildren; j++)
			render_child(out, f->children[j]);
	}
}

static const char *const results[] = { "success", "error", "requeue", "requeue_after" };

void ks_metrics_controller_init(struct ks_metrics *m, const char *controller)
{
	if (!m)
		return;
	for (size_t i = 0; i < KS_ARRAY_SIZE(results); i++)
		ks_metric_child(m->std[RECONCILE_TOTAL], KS_LABELS(controller, results[i]));
	ks_metric_child(m->std[RECONCILE_ERRORS], KS_LABELS(controller));
	ks_metric_child(m->std[RECONCILE_TIME], KS_LABELS(controller));
}

void ks_metrics_reconcile(struct ks_metrics *m, const char *controller,
			  enum ks_reconcile_result result, double seconds)
{
	if (!m)
		return;
	ks_require((size_t)result < KS_ARRAY_SIZE(results));
	ks_metric_inc(
		ks_metric_child(m->std[RECONCILE_TOTAL], KS_LABELS(controller, results[result])));
	if (result == KS_RECONCILE_ERROR)
		ks_metric_inc(ks_metric_child(m->std[RECONCILE_ERRORS], KS_LABELS(controller)));
	ks_metric_observe(ks_metric_child(m->std[RECONCILE_TIME], KS_LABELS(controller)), seconds);
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
	ks_metric_inc(ks_metric_child(m->std[REST_REQUESTS], KS_LABELS(buf, method, host)));
}

void ks_metrics_workqueue_init(struct ks_metrics *m, const char *name,
			       struct ks_metrics_workqueue *wq)
{
	const char *const *v = KS_LABELS(name);

	memset(wq, 0, sizeof(*wq));
	if (!m)
		return;
	wq->depth = ks_metric_child(m->std[WQ_DEPTH], v);
	wq->adds = ks_metric_child(m->std[WQ_ADDS], v);
	wq->queue_duration = ks_metric_child(m->std[WQ_QUEUE_DURATION], v);
	wq->work_duration = ks_metric_child(m->std[WQ_WORK_DURATION], v);
	wq->retries = ks_metric_child(m->std[WQ_RETRIES], v);
	wq->unfinished_work = ks_metric_child(m->std[WQ_UNFINISHED], v);
	wq->longest_running = ks_metric_child(m->std[WQ_LONGEST], v);
}

/* The ops endpoints, served by host/serve.c. */

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct ks_metrics_server {
	struct ks_serve *srv;
	struct ks_metrics *metrics;
	ks_metrics_ready_cb ready;
	void *ready_data;
	bool stopping;
};

static void server_freed(void *data)
{
	free(data);
}

static int get_metrics(void *data, struct ks_buf *body, const char **ctype)
{
	struct ks_metrics_server *s = data;
	struct ks_metrics *m = s->metrics ? s->metrics : ks_metrics_default();

	*ctype = METRICS_TYPE;
	if (m)
		ks_metrics_render(m, body);
	return 200;
}

static int get_healthz(void *data, struct ks_buf *body, const char **ctype)
{
	ks_buf_puts(body, "ok");
	return 200;
}

static int get_readyz(void *data, struct ks_buf *body, const char **ctype)
{
	struct ks_metrics_server *s = data;
	char why[256] = "";
	int status = 200;

	if (s->ready && !s->ready(s->ready_data, why, sizeof(why)))
		status = 503;
	why[sizeof(why) - 1] = '\0';
	ks_buf_puts(body, why[0] ? why : status == 200 ? "ok" : "not ready");
	return status;
}

int ks_metrics_server_start(uv_loop_t *loop, const char *addr,
			    const struct ks_metrics_server_opts *opts,
			    struct ks_metrics_server **out)
{
	struct ks_metrics_server_opts o = opts ? *opts : (struct ks_metrics_server_opts){ 0 };
	struct ks_metrics_server *s = ks_xcalloc(1, sizeof(*s));
	struct ks_serve_opts so = { .idle_timeout_ms = o.idle_timeout_ms,
				    .max_header = o.max_header,
				    .max_conns = o.max_conns,
				    .on_free = server_freed,
				    .free_data = s };
	int err = ks_serve_start(loop, addr, &so, &s->srv);

	if (err)
		return err; /* s is freed with the server that could not listen */
	s->metrics = o.metrics;
	s->ready = o.ready;
	s->ready_data = o.ready_data;
	ks_require(ks_serve_route(s->srv, "/metrics", get_metrics, s) == 0);
	ks_require(ks_serve_route(s->srv, "/healthz", get_healthz, s) == 0);
	ks_require(ks_serve_route(s->srv, "/readyz", get_readyz, s) == 0);
	*out = s;
	return 0;
}

void ks_metrics_server_set_ready(struct ks_metrics_server *s, ks_metrics_ready_cb cb, void *data)
{
	s->ready = cb;
	s->ready_data = data;
}

int ks_metrics_server_port(const struct ks_metrics_server *s)
{
	return ks_serve_port(s->srv);
}

size_t ks_metrics_server_conns(const struct ks_metrics_server *s)
{
	return ks_serve_conns(s->srv);
}

/* s is freed with the server (server_freed), once its connections are closed. */
void ks_metrics_server_stop(struct ks_metrics_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	ks_serve_stop(s->srv);
}
