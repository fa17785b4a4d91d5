/*
 * metrics_server.c: the ops endpoints /metrics, /healthz and /readyz, served by
 * host/serve.c.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "metrics.h"
#include "serve.h"

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
