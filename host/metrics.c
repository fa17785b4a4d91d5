/*
 * metrics.c: the Prometheus registry and its text exposition (format 0.0.4). The standard
 * series of controllers, work queues and the REST client are in metrics_std.c, the
 * /metrics /healthz /readyz server in metrics_server.c.
 */
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

struct ks_metrics {
	struct ks_map *index; /* name -> struct ks_metric_family * */
	struct ks_metric_family **families;
	size_t nfamilies;
	size_t cap;
	struct collector *collectors;
	size_t ncollectors;
};

static struct ks_metrics *default_registry;

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

struct ks_metrics *ks_metrics_new(void)
{
	struct ks_metrics *m = ks_xcalloc(1, sizeof(*m));

	m->index = ks_map_new(0);
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
