/* metrics.c: the Prometheus registry and its text exposition (format 0.0.4). */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "map.h"

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

/* The ops HTTP server. */

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct ks_metrics_server *srv;
	struct conn *prev;
	struct conn *next;
	struct ks_buf in;
	struct ks_buf head;
	struct ks_buf body;
	size_t scanned; /* bytes of in searched for the end of the head */
	int open_handles;
	bool writing;
	bool close_after; /* close once the response is out */
	bool draining;	  /* response out and FIN sent: discard input until EOF */
	bool closing;
};

struct ks_metrics_server {
	uv_tcp_t tcp;
	struct ks_metrics_server_opts o;
	struct conn *conns;
	size_t nconns;
	int port;
	bool listening; /* tcp not yet closed */
	bool stopping;
	char rbuf[16384]; /* one read at a time: the loop is single-threaded */
};

struct request {
	char method[16];
	const char *path;
	size_t path_len;
	bool keep_alive;
	bool keep_alive_10; /* HTTP/1.0 asking for keep-alive: say so in the reply */
	bool has_body;
};

static void maybe_free_server(struct ks_metrics_server *s)
{
	if (s->stopping && !s->listening && s->nconns == 0)
		free(s);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct ks_metrics_server *s = c->srv;

	if (--c->open_handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	ks_buf_deinit(&c->in);
	ks_buf_deinit(&c->head);
	ks_buf_deinit(&c->body);
	free(c);
	maybe_free_server(s);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "HTTP Version Not Supported";
	}
}

static void on_write(uv_write_t *req, int status);

/* Send the head for c->body (sending the body too unless head_only). */
static void respond(struct conn *c, int status, const char *ctype, const char *extra,
		    bool head_only, bool keep_alive_10)
{
	uv_buf_t bufs[2];
	unsigned n = 1;

	ks_buf_reset(&c->head);
	ks_buf_printf(&c->head,
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
		      status, reason(status), ctype, c->body.len, extra,
		      c->close_after  ? "Connection: close\r\n"
		      : keep_alive_10 ? "Connection: keep-alive\r\n"
				      : "");
	bufs[0] = uv_buf_init(c->head.data, (unsigned)c->head.len);
	if (!head_only && c->body.len)
		bufs[n++] = uv_buf_init(c->body.data, (unsigned)c->body.len);
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, n, on_write) < 0)
		conn_close(c);
	else
		c->writing = true;
}

static void fail(struct conn *c, int status)
{
	c->close_after = true;
	ks_buf_reset(&c->body);
	ks_buf_printf(&c->body, "%s\n", reason(status));
	respond(c, status, TEXT_TYPE, "", false, false);
}

static bool path_is(const struct request *r, const char *path)
{
	return strlen(path) == r->path_len && memcmp(r->path, path, r->path_len) == 0;
}

static void route(struct conn *c, const struct request *r)
{
	struct ks_metrics_server *s = c->srv;
	bool head = strcmp(r->method, "HEAD") == 0;
	const char *ctype = TEXT_TYPE, *extra = "";
	struct ks_metrics *m;
	char why[256] = "";
	int status = 200;

	ks_buf_reset(&c->body);
	if (!path_is(r, "/metrics") && !path_is(r, "/healthz") && !path_is(r, "/readyz")) {
		status = 404;
		ks_buf_puts(&c->body, "404 page not found\n");
	} else if (!head && strcmp(r->method, "GET") != 0) {
		status = 405;
		extra = "Allow: GET, HEAD\r\n";
		ks_buf_puts(&c->body, "method not allowed\n");
	} else if (path_is(r, "/metrics")) {
		ctype = METRICS_TYPE;
		m = s->o.metrics ? s->o.metrics : ks_metrics_default();
		if (m)
			ks_metrics_render(m, &c->body);
	} else if (path_is(r, "/healthz")) {
		ks_buf_puts(&c->body, "ok");
	} else {
		if (s->o.ready && !s->o.ready(s->o.ready_data, why, sizeof(why)))
			status = 503;
		why[sizeof(why) - 1] = '\0';
		ks_buf_puts(&c->body, why[0] ? why : status == 200 ? "ok" : "not ready");
	}
	respond(c, status, ctype, extra, head, r->keep_alive_10);
}

/* The line at p (ending before end): *len without CR LF; returns where the next starts. */
static const char *next_line(const char *p, const char *end, size_t *len)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (!nl)
		nl = end - 1;
	*len = (size_t)(nl - p);
	if (*len && p[*len - 1] == '\r')
		(*len)--;
	return nl + 1;
}

static bool ieq(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Whether the comma-separated list v[0..n) holds tok (case-insensitive). */
static bool has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= n; i++) {
		bool start = i == 0 || strchr(", \t", v[i - 1]);
		bool stop = i + tl == n || strchr(", \t", v[i + tl]);

		if (start && stop && strncasecmp(v + i, tok, tl) == 0)
			return true;
	}
	return false;
}

/* "METHOD SP target SP HTTP/1.x": 0, 400 or 505; *minor is the x. */
static int parse_request_line(const char *p, size_t len, struct request *r, int *minor)
{
	const char *sp1 = memchr(p, ' ', len), *sp2, *ver, *q;
	size_t vlen;

	if (!sp1 || sp1 == p || (size_t)(sp1 - p) >= sizeof(r->method))
		return 400;
	for (const char *m = p; m < sp1; m++) {
		if (*m < 'A' || *m > 'Z')
			return 400;
	}
	memcpy(r->method, p, (size_t)(sp1 - p));
	r->method[sp1 - p] = '\0';
	sp2 = memchr(sp1 + 1, ' ', (size_t)(p + len - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return 400;
	r->path = sp1 + 1;
	r->path_len = (size_t)(sp2 - r->path);
	q = memchr(r->path, '?', r->path_len);
	if (q)
		r->path_len = (size_t)(q - r->path);
	ver = sp2 + 1;
	vlen = (size_t)(p + len - ver);
	if (vlen < 5 || memcmp(ver, "HTTP/", 5) != 0)
		return 400;
	if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
		return 505;
	*minor = ver[7] - '0';
	return 0;
}

/* Parse the request head p[0..n) (which ends with an empty line): 0, 400 or 505. */
static int parse_head(const char *p, size_t n, struct request *r)
{
	const char *end = p + n, *line = p, *next, *colon, *v;
	bool close = false, keep = false, host = false;
	size_t len, vlen;
	int minor = 1, err;

	memset(r, 0, sizeof(*r));
	next = next_line(line, end, &len);
	err = parse_request_line(line, len, r, &minor);
	for (line = next; !err && line < end; line = next) {
		next = next_line(line, end, &len);
		if (len == 0)
			break;
		colon = memchr(line, ':', len);
		if (line[0] == ' ' || line[0] == '\t' || !colon || colon == line ||
		    colon[-1] == ' ' || colon[-1] == '\t')
			return 400;
		for (v = colon + 1; v < line + len && (*v == ' ' || *v == '\t'); v++)
			;
		vlen = (size_t)(line + len - v);
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (ieq(line, (size_t)(colon - line), "connection")) {
			close |= has_token(v, vlen, "close");
			keep |= has_token(v, vlen, "keep-alive");
		} else if (ieq(line, (size_t)(colon - line), "content-length")) {
			if (vlen == 0 || strspn(v, "0123456789") < vlen)
				return 400;
			r->has_body |= strspn(v, "0") < vlen;
		} else if (ieq(line, (size_t)(colon - line), "transfer-encoding")) {
			r->has_body = true;
		} else if (ieq(line, (size_t)(colon - line), "host")) {
			host = true;
		}
	}
	if (!err && minor >= 1 && !host)
		err = 400;
	r->keep_alive = !close && (minor >= 1 || keep);
	r->keep_alive_10 = minor == 0 && r->keep_alive;
	return err;
}

/*
 * Length of the request head at the start of p[0..n), empty line included; 0 if
 * incomplete. Bytes before from were scanned already (a head arriving in pieces).
 */
static size_t head_len(const char *p, size_t n, size_t from)
{
	if (!n)
		return 0;
	for (const char *nl = p + (from > 2 ? from - 2 : 0);
	     (nl = memchr(nl, '\n', (size_t)(p + n - nl))); nl++) {
		if (nl + 1 < p + n && nl[1] == '\n')
			return (size_t)(nl - p) + 2;
		if (nl + 2 < p + n && nl[1] == '\r' && nl[2] == '\n')
			return (size_t)(nl - p) + 3;
	}
	return 0;
}

/* Answer every complete request in c->in, one response in flight at a time. */
static void process(struct conn *c)
{
	struct request r;
	size_t n, skip;
	int err;

	while (!c->writing && !c->closing && !c->draining) {
		/* Empty lines before a request line are ignored (RFC 9112 2.2). */
		skip = strspn(c->in.data ? c->in.data : "", "\r\n");
		if (skip) {
			ks_buf_consume(&c->in, skip);
			c->scanned = 0;
		}
		n = head_len(c->in.data, c->in.len, c->scanned);
		if (n > c->srv->o.max_header || (!n && c->in.len > c->srv->o.max_header)) {
			fail(c, 431);
			return;
		}
		c->scanned = n ? 0 : c->in.len;
		if (!n)
			return;
		err = parse_head(c->in.data, n, &r);
		if (err) {
			fail(c, err);
			return;
		}
		/* Request bodies are never read, so a request with one ends the connection. */
		c->close_after = !r.keep_alive || r.has_body;
		route(c, &r);
		ks_buf_consume(&c->in, n);
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	*buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->draining || nread == 0)
		return;
	ks_buf_append(&c->in, buf->base, (size_t)nread);
	process(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	/* Lingering close: read until the peer's EOF, so unread input cannot turn our close
	 * into a reset that loses the response (as nginx's lingering_close). */
	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = false;
	ks_buf_deinit(&c->head);
	ks_buf_deinit(&c->body);
	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, c->srv->o.idle_timeout_ms, 0);
	if (c->close_after) {
		c->draining = true;
		c->sreq.data = c;
		if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
			conn_close(c);
		return;
	}
	process(c);
	if (!c->writing && !c->closing &&
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ks_metrics_server *s = server->data;
	struct conn *c;

	if (status < 0 || s->stopping)
		return;
	c = ks_xcalloc(1, sizeof(*c));
	c->srv = s;
	c->tcp.data = c;
	c->timer.data = c;
	ks_require(uv_tcp_init(server->loop, &c->tcp) == 0);
	ks_require(uv_timer_init(server->loop, &c->timer) == 0);
	c->open_handles = 2;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || s->nconns > s->o.max_conns ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, s->o.idle_timeout_ms, 0);
}

/* "host:port", "[v6]:port" or ":port" into ss. 0 or -EINVAL. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t hl;
	long port;
	char *end;

	if (!colon || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	hl = (size_t)(colon - addr);
	if (*end || port > 65535 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl == 0)
		return uv_ip4_addr("0.0.0.0", (int)port, (struct sockaddr_in *)ss);
	if (strcmp(host, "localhost") == 0)
		return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)ss);
	if (host[0] != '[')
		return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
	if (hl < 3 || host[hl - 1] != ']')
		return -EINVAL;
	host[hl - 1] = '\0';
	return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct ks_metrics_server *s = h->data;

	s->listening = false;
	maybe_free_server(s);
}

static int local_port(uv_tcp_t *tcp)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int ks_metrics_server_start(uv_loop_t *loop, const char *addr,
			    const struct ks_metrics_server_opts *opts,
			    struct ks_metrics_server **out)
{
	struct ks_metrics_server *s;
	struct sockaddr_storage ss;
	int err = parse_addr(addr, &ss);

	if (err)
		return err;
	s = ks_xcalloc(1, sizeof(*s));
	if (opts)
		s->o = *opts;
	s->o.idle_timeout_ms = s->o.idle_timeout_ms ? s->o.idle_timeout_ms : 30000;
	s->o.max_header = s->o.max_header ? s->o.max_header : 8192;
	s->o.max_conns = s->o.max_conns ? s->o.max_conns : 256;
	s->tcp.data = s;
	err = uv_tcp_init(loop, &s->tcp);
	if (err) {
		free(s);
		return err;
	}
	s->listening = true;
	err = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
	if (!err)
		err = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection);
	if (err)
		goto out_close;
	s->port = local_port(&s->tcp);
	*out = s;
	return 0;

out_close:
	s->stopping = true;
	uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
	return err;
}

void ks_metrics_server_set_ready(struct ks_metrics_server *s, ks_metrics_ready_cb cb, void *data)
{
	s->o.ready = cb;
	s->o.ready_data = data;
}

int ks_metrics_server_port(const struct ks_metrics_server *s)
{
	return s->port;
}

size_t ks_metrics_server_conns(const struct ks_metrics_server *s)
{
	return s->nconns;
}

void ks_metrics_server_stop(struct ks_metrics_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
}
