/* test_metrics.c: the Prometheus registry, its exposition format and the ops HTTP server. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "metrics.h"
#include "test.h"

/* Whether text is valid exposition format: comments, then `name{l="v",...} value` lines. */
static bool exposition_ok(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		char *end;

		if (!nl)
			return false; /* every line ends with a newline */
		if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
			p = nl + 1;
			continue;
		}
		if (!(*p == '_' || *p == ':' || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
			return false;
		while (*p == '_' || *p == ':' || (*p >= '0' && *p <= '9') ||
		       ((*p | 32) >= 'a' && (*p | 32) <= 'z'))
			p++;
		if (*p == '{') {
			for (p++; *p != '}';) {
				while (*p == '_' || (*p >= '0' && *p <= '9') ||
				       ((*p | 32) >= 'a' && (*p | 32) <= 'z'))
					p++;
				if (p[0] != '=' || p[1] != '"')
					return false;
				for (p += 2; *p != '"'; p++) {
					if (*p == '\n' || !*p)
						return false;
					if (*p == '\\' && !strchr("\\\"n", *++p))
						return false;
				}
				p++;
				if (*p == ',')
					p++;
				else if (*p != '}')
					return false;
			}
			p++;
		}
		if (*p++ != ' ')
			return false;
		if (strncmp(p, "+Inf\n", 5) && strncmp(p, "-Inf\n", 5) && strncmp(p, "NaN\n", 4)) {
			strtod(p, &end);
			if (end == p || end != nl)
				return false;
		}
		p = nl + 1;
	}
	return true;
}

/* The value of the sample line starting with series, or NAN. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	return NAN;
}

static char *render(struct ks_metrics *m)
{
	struct ks_buf b;

	ks_buf_init(&b);
	ks_metrics_render(m, &b);
	return ks_buf_steal(&b);
}

TEST(exact_exposition)
{
	struct ks_metrics *m = ks_metrics_new();
	static const double b[] = { 0.5, 1 };
	struct ks_metric_family *c, *g, *h;
	char *text;

	c = ks_metrics_counter(m, "kupenstack_things_total", "Things.\nBack\\slash",
			       KS_LABELS("kind"));
	g = ks_metrics_gauge(m, "kupenstack_up", "Up.", NULL);
	h = ks_metrics_histogram(m, "kupenstack_op_seconds", "Ops.", KS_LABELS("op"), b, 2);
	ASSERT(c && g && h);
	ks_metric_add(ks_metric_child(c, KS_LABELS("a\"b\\c\nd")), 2);
	ks_metric_set(ks_metric_child(g, NULL), 1);
	ks_metric_observe(ks_metric_child(h, KS_LABELS("x")), 0.5);
	ks_metric_observe(ks_metric_child(h, KS_LABELS("x")), 0.75);
	ks_metric_observe(ks_metric_child(h, KS_LABELS("x")), 3);
	text = render(m);
	ASSERT_STR(text, "# HELP kupenstack_things_total Things.\\nBack\\\\slash\n"
			 "# TYPE kupenstack_things_total counter\n"
			 "kupenstack_things_total{kind=\"a\\\"b\\\\c\\nd\"} 2\n"
			 "# HELP kupenstack_up Up.\n"
			 "# TYPE kupenstack_up gauge\n"
			 "kupenstack_up 1\n"
			 "# HELP kupenstack_op_seconds Ops.\n"
			 "# TYPE kupenstack_op_seconds histogram\n"
			 "kupenstack_op_seconds_bucket{op=\"x\",le=\"0.5\"} 1\n"
			 "kupenstack_op_seconds_bucket{op=\"x\",le=\"1\"} 2\n"
			 "kupenstack_op_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n"
			 "kupenstack_op_seconds_sum{op=\"x\"} 4.25\n"
			 "kupenstack_op_seconds_count{op=\"x\"} 3\n");
	ASSERT(exposition_ok(text));
	free(text);
	ks_metrics_free(m);
}

TEST(floats_as_go_writes_them)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_metric_family *g = ks_metrics_gauge(m, "v", "v", KS_LABELS("i"));
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 1e-08, "1e-08" },   { 0.005, "0.005" },
		{ 60, "60" },	      { 1e6, "1e+06" },
		{ 123456, "123456" }, { 2812856, "2.812856e+06" },
		{ 0.0001, "0.0001" }, { 0.1 + 0.2, "0.30000000000000004" },
		{ -1.5, "-1.5" },     { 0, "0" },
	};
	char *text, series[32];

	for (size_t i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		snprintf(series, sizeof(series), "%zu", i);
		ks_metric_set(ks_metric_child(g, KS_LABELS(series)), cases[i].v);
	}
	ks_metric_set(ks_metric_child(g, KS_LABELS("nan")), NAN);
	ks_metric_set(ks_metric_child(g, KS_LABELS("inf")), -INFINITY);
	text = render(m);
	for (size_t i = 0; i < KS_ARRAY_SIZE(cases); i++) {
		char line[64];

		snprintf(line, sizeof(line), "v{i=\"%zu\"} %s\n", i, cases[i].want);
		if (!strstr(text, line))
			FAIL_("missing %s", line);
	}
	ASSERT(strstr(text, "v{i=\"nan\"} NaN\n"));
	ASSERT(strstr(text, "v{i=\"inf\"} -Inf\n"));
	ASSERT(exposition_ok(text));
	free(text);
	ks_metrics_free(m);
}

TEST(registration_rules)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_metric_family *f = ks_metrics_counter(m, "a_total", "A", KS_LABELS("x"));
	static const double b[] = { 1, 2 }, bad[] = { 2, 1 };

	ASSERT(f);
	ASSERT(ks_metrics_counter(m, "a_total", "other help", KS_LABELS("x")) == f);
	ASSERT(ks_metrics_find(m, "a_total") == f);
	ASSERT(ks_metrics_counter(m, "a_total", "A", KS_LABELS("y")) == NULL);
	ASSERT(ks_metrics_gauge(m, "a_total", "A", KS_LABELS("x")) == NULL);
	ASSERT(ks_metrics_counter(m, "9bad", "A", NULL) == NULL);
	ASSERT(ks_metrics_counter(m, "bad-name", "A", NULL) == NULL);
	ASSERT(ks_metrics_counter(m, "ok", "A", KS_LABELS("__reserved")) == NULL);
	ASSERT(ks_metrics_histogram(m, "h", "H", KS_LABELS("le"), b, 2) == NULL);
	ASSERT(ks_metrics_histogram(m, "h", "H", NULL, bad, 2) == NULL);
	ASSERT(ks_metrics_histogram(m, "h", "H", NULL, b, 2) != NULL);
	ASSERT(ks_metric_child(f, KS_LABELS("1")) == ks_metric_child(f, KS_LABELS("1")));
	ASSERT(ks_metric_child(NULL, NULL) == NULL);
	ks_metric_inc(NULL);
	ks_metric_observe(NULL, 1);
	ASSERT(ks_metric_value(NULL) == 0);
	ks_metrics_free(m);
}

static int collected;

static void collect(struct ks_metrics *m, void *data)
{
	collected++;
	ks_metric_set(ks_metric_child(ks_metrics_find(m, "live"), NULL), *(double *)data);
}

TEST(standard_families_and_collectors)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_metrics_workqueue wq;
	double live = 7;
	char *text;

	ks_metrics_gauge(m, "live", "Live.", NULL);
	ks_metrics_add_collector(m, collect, &live);
	ks_metrics_controller_init(m, "instance");
	ks_metrics_reconcile(m, "instance", KS_RECONCILE_SUCCESS, 0.003);
	ks_metrics_reconcile(m, "instance", KS_RECONCILE_ERROR, 0.2);
	ks_metrics_reconcile(m, "instance", KS_RECONCILE_ERROR, 100);
	ks_metrics_rest_request(m, 200, "GET", "10.96.0.1:443");
	ks_metrics_rest_request(m, 0, "PUT", "10.96.0.1:443");
	ks_metrics_workqueue_init(m, "instance", &wq);
	ks_metric_inc(wq.adds);
	text = render(m);
	ASSERT_EQ(collected, 1);
	ASSERT(exposition_ok(text));
	ASSERT_EQ(sample(text, "live"), 7);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_total{controller=\"instance\","
			       "result=\"success\"}"),
		  1);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_total{controller=\"instance\","
			       "result=\"error\"}"),
		  2);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_total{controller=\"instance\","
			       "result=\"requeue_after\"}"),
		  0);
	ASSERT_EQ(
		sample(text, "controller_runtime_reconcile_errors_total{controller=\"instance\"}"),
		2);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_time_seconds_bucket{controller="
			       "\"instance\",le=\"0.005\"}"),
		  1);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_time_seconds_bucket{controller="
			       "\"instance\",le=\"60\"}"),
		  2);
	ASSERT_EQ(sample(text, "controller_runtime_reconcile_time_seconds_count{controller="
			       "\"instance\"}"),
		  3);
	ASSERT_EQ(sample(text, "rest_client_requests_total{code=\"200\",method=\"GET\",host="
			       "\"10.96.0.1:443\"}"),
		  1);
	ASSERT_EQ(sample(text, "rest_client_requests_total{code=\"<error>\",method=\"PUT\",host="
			       "\"10.96.0.1:443\"}"),
		  1);
	ASSERT_EQ(sample(text, "workqueue_adds_total{name=\"instance\"}"), 1);
	ASSERT(strstr(
		text,
		"workqueue_queue_duration_seconds_bucket{name=\"instance\",le=\"1e-08\"} 0\n"
		"workqueue_queue_duration_seconds_bucket{name=\"instance\",le=\"1e-07\"} 0\n"));
	ASSERT(strstr(text, "# TYPE workqueue_depth gauge\n"));
	ASSERT(strstr(text, "# TYPE workqueue_work_duration_seconds histogram\n"));
	ks_metrics_remove_collector(m, collect, &live);
	free(text);
	text = render(m);
	ASSERT_EQ(collected, 1);
	free(text);
	ks_metrics_set_default(m);
	ASSERT(ks_metrics_default() == m);
	ks_metrics_free(m);
	ASSERT(ks_metrics_default() == NULL);
}

/* A TCP client on the test's loop: sends req (in step-byte pieces, one per loop turn
 * with 1 ms between, if step), then reads until the server closes. */
struct client {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_write_t wreq;
	const char *req;
	size_t len, off, step, n;
	struct ks_buf resp;
	bool eof;
	int handles;
};

static struct ks_metrics_server *srv;
static int clients_left;

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	if (--c->handles == 0 && --clients_left == 0)
		ks_metrics_server_stop(srv);
}

static void client_close(struct client *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, client_closed);
	uv_close((uv_handle_t *)&c->timer, client_closed);
}

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char b[65536];

	*buf = uv_buf_init(b, sizeof(b));
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *c = s->data;

	if (n > 0)
		ks_buf_append(&c->resp, buf->base, (size_t)n);
	if (n < 0) {
		c->eof = n == UV_EOF;
		client_close(c);
	}
}

static void client_send(uv_timer_t *t);

static void client_written(uv_write_t *w, int status)
{
	struct client *c = w->data;

	c->off += c->n;
	if (status == 0 && c->off < c->len)
		uv_timer_start(&c->timer, client_send, 1, 0);
}

static void client_send(uv_timer_t *t)
{
	struct client *c = t->data;
	uv_buf_t b;

	c->n = c->step ? KS_MIN(c->step, c->len - c->off) : c->len - c->off;
	b = uv_buf_init((char *)c->req + c->off, (unsigned)c->n);
	c->wreq.data = c;
	uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, client_written);
}

static void client_connected(uv_connect_t *r, int status)
{
	struct client *c = r->data;

	if (status < 0) {
		client_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
	if (c->len)
		client_send(&c->timer);
}

static void client_start(uv_loop_t *loop, struct client *c, const char *req, size_t step)
{
	struct sockaddr_in a;

	memset(c, 0, sizeof(*c));
	c->req = req;
	c->len = strlen(req);
	c->step = step;
	c->tcp.data = c->timer.data = c->creq.data = c;
	c->handles = 2;
	ks_buf_init(&c->resp);
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->timer);
	uv_ip4_addr("127.0.0.1", ks_metrics_server_port(srv), &a);
	uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&a, client_connected);
	clients_left++;
}

static bool ready_flag;

static bool ready(void *data, char *reason, size_t cap)
{
	if (!ready_flag)
		snprintf(reason, cap, "%s", (const char *)data);
	return ready_flag;
}

/* Run clients for reqs against a fresh server; each response lands in cs[i].resp. */
static int serve(struct ks_metrics *m, struct client *cs, const char *const *reqs, size_t n,
		 size_t step, unsigned idle_ms)
{
	uv_loop_t loop;
	struct ks_metrics_server_opts o = { .metrics = m,
					    .ready = ready,
					    .ready_data = "cache not synced",
					    .idle_timeout_ms = idle_ms };
	int err;

	uv_loop_init(&loop);
	err = ks_metrics_server_start(&loop, "127.0.0.1:0", &o, &srv);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++)
		client_start(&loop, &cs[i], reqs[i], step);
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop);
}

static int status_of(const struct client *c)
{
	return strncmp(c->resp.data ? c->resp.data : "", "HTTP/1.1 ", 9) == 0
		       ? atoi(c->resp.data + 9)
		       : -1;
}

static const char *body_of(const struct client *c)
{
	const char *p = c->resp.data ? strstr(c->resp.data, "\r\n\r\n") : NULL;

	return p ? p + 4 : "";
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

TEST(http_routes)
{
	struct ks_metrics *m = ks_metrics_new();
	const char *const reqs[] = {
		GET("/metrics"),
		GET("/healthz"),
		GET("/readyz"),
		GET("/nope"),
		"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
		"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n",
		"garbage\r\n\r\n",
		"GET /healthz HTTP/1.0\r\n\r\n",
	};
	struct client cs[KS_ARRAY_SIZE(reqs)];

	ks_metric_inc(
		ks_metric_child(ks_metrics_counter(m, "kupenstack_x_total", "X.", NULL), NULL));
	ready_flag = false;
	ASSERT_EQ(serve(m, cs, reqs, KS_ARRAY_SIZE(reqs), 0, 5000), 0);
	ASSERT_EQ(status_of(&cs[0]), 200);
	ASSERT(strstr(cs[0].resp.data,
		      "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	ASSERT(exposition_ok(body_of(&cs[0])));
	ASSERT_EQ(sample(body_of(&cs[0]), "kupenstack_x_total"), 1);
	ASSERT_EQ(status_of(&cs[1]), 200);
	ASSERT_STR(body_of(&cs[1]), "ok");
	ASSERT_EQ(status_of(&cs[2]), 503);
	ASSERT_STR(body_of(&cs[2]), "cache not synced");
	ASSERT_EQ(status_of(&cs[3]), 404);
	ASSERT_EQ(status_of(&cs[4]), 405);
	ASSERT(strstr(cs[4].resp.data, "\r\nAllow: GET, HEAD\r\n"));
	ASSERT(strstr(cs[4].resp.data, "\r\nConnection: close\r\n"));
	ASSERT_EQ(status_of(&cs[5]), 200);
	ASSERT(strstr(cs[5].resp.data, "\r\nContent-Length: 2\r\n"));
	ASSERT_STR(body_of(&cs[5]), "");
	ASSERT_EQ(status_of(&cs[6]), 400);
	ASSERT_EQ(status_of(&cs[7]), 505);
	ASSERT_EQ(status_of(&cs[8]), 400);
	ASSERT_EQ(status_of(&cs[9]), 200); /* HTTP/1.0: closed after one response */
	ASSERT(strstr(cs[9].resp.data, "\r\nConnection: close\r\n"));
	for (size_t i = 0; i < KS_ARRAY_SIZE(reqs); i++) {
		ASSERT(cs[i].eof);
		ks_buf_deinit(&cs[i].resp);
	}
	ready_flag = true;
	ASSERT_EQ(serve(m, cs, reqs + 2, 1, 0, 5000), 0);
	ASSERT_EQ(status_of(&cs[0]), 200);
	ASSERT_STR(body_of(&cs[0]), "ok");
	ks_buf_deinit(&cs[0].resp);
	ks_metrics_free(m);
}

TEST(http_split_keepalive_and_many_clients)
{
	enum { N = 64 };
	struct ks_metrics *m = ks_metrics_new();
	const char *const split[] = { GET("/healthz") };
	/* Two pipelined keep-alive requests, then one that asks to close. */
	const char *const pipelined[] = { "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
					  "GET /readyz?verbose HTTP/1.1\r\nHost: t\r\n\r\n" GET(
						  "/healthz") };
	const char *many[N];
	struct client cs[N];
	const char *p;
	int n = 0;

	ready_flag = true;
	ASSERT_EQ(serve(m, cs, split, 1, 1, 5000), 0);
	ASSERT_EQ(status_of(&cs[0]), 200);
	ASSERT_STR(body_of(&cs[0]), "ok");
	ks_buf_deinit(&cs[0].resp);

	ASSERT_EQ(serve(m, cs, pipelined, 1, 0, 5000), 0);
	for (p = cs[0].resp.data; (p = strstr(p, "HTTP/1.1 200 OK\r\n")); p++)
		n++;
	ASSERT_EQ(n, 3);
	ASSERT(cs[0].eof);
	ks_buf_deinit(&cs[0].resp);

	for (int i = 0; i < N; i++)
		many[i] = GET("/metrics");
	ks_metrics_controller_init(m, "c");
	ASSERT_EQ(serve(m, cs, many, N, 0, 5000), 0);
	for (int i = 0; i < N; i++) {
		ASSERT_EQ(status_of(&cs[i]), 200);
		ASSERT(exposition_ok(body_of(&cs[i])));
		ks_buf_deinit(&cs[i].resp);
	}
	ks_metrics_free(m);
}

TEST(http_limits)
{
	struct ks_metrics *m = ks_metrics_new();
	struct ks_buf big;
	const char *reqs[2];
	struct client cs[2];

	ks_buf_init(&big);
	ks_buf_puts(&big, "GET /metrics HTTP/1.1\r\nHost: t\r\n");
	while (big.len < 10000)
		ks_buf_puts(&big,
			    "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
	ks_buf_puts(&big, "\r\n");
	reqs[0] = big.data;
	reqs[1] = ""; /* connects and says nothing: the idle timeout closes it */
	ASSERT_EQ(serve(m, cs, reqs, 2, 0, 200), 0);
	ASSERT_EQ(status_of(&cs[0]), 431);
	ASSERT(strstr(cs[0].resp.data, "\r\nConnection: close\r\n"));
	ASSERT(cs[0].eof);
	ASSERT_EQ(cs[1].resp.len, 0);
	ASSERT(cs[1].eof);
	ks_buf_deinit(&cs[0].resp);
	ks_buf_deinit(&cs[1].resp);
	ks_buf_deinit(&big);
	ks_metrics_free(m);
}

static void stop_now(uv_timer_t *t)
{
	ks_metrics_server_stop(srv);
	uv_close((uv_handle_t *)t, NULL);
}

TEST(http_start_errors_and_stop)
{
	uv_loop_t loop;
	struct ks_metrics_server *a, *b = NULL;
	struct client c;
	uv_timer_t t;
	char addr[32];

	uv_loop_init(&loop);
	ASSERT_EQ(ks_metrics_server_start(&loop, "127.0.0.1", NULL, &a), -EINVAL);
	ASSERT_EQ(ks_metrics_server_start(&loop, "300.0.0.1:80", NULL, &a), -EINVAL);
	ASSERT_EQ(ks_metrics_server_start(&loop, "[::1:80", NULL, &a), -EINVAL);
	ASSERT_EQ(ks_metrics_server_start(&loop, "127.0.0.1:0", NULL, &a), 0);
	ASSERT(ks_metrics_server_port(a) > 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ks_metrics_server_port(a));
	ASSERT_EQ(ks_metrics_server_start(&loop, addr, NULL, &b), -EADDRINUSE);
	ASSERT(b == NULL);
	/* Stop with an idle client connected: it sees EOF and everything closes. */
	srv = a;
	client_start(&loop, &c, "", 0);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, stop_now, 50, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(c.eof);
	ks_buf_deinit(&c.resp);
	ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
	alarm(120);
	RUN(exact_exposition);
	RUN(floats_as_go_writes_them);
	RUN(registration_rules);
	RUN(standard_families_and_collectors);
	RUN(http_routes);
	RUN(http_split_keepalive_and_many_clients);
	RUN(http_limits);
	RUN(http_start_errors_and_stop);
	TEST_MAIN();
}
