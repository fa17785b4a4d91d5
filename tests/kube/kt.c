/* kt.c: the real-cluster test helpers and the fault-injecting loopback proxy. */
#include "kt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

const struct ks_kube_res kt_widgets = { "test.kupenstack.io", "v1", "widgets", true };

void kt_init(struct kt *t, const char *env)
{
	const char *path = getenv(env);
	char *err = NULL;

	if (!path || !*path) {
		fprintf(stderr, "%s is not set: run under tests/env/kube up\n", env);
		exit(2);
	}
	if (ks_kubeconfig_load(&t->cfg, path, NULL, &err) != 0) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	uv_loop_init(&t->loop);
	t->http = ks_http_new(&t->loop);
	t->kube = ks_kube_new(t->http, &t->cfg);
	if (getenv("KT_DEBUG"))
		ks_log_set_level(KS_LOG_DEBUG);
}

void kt_deinit(struct kt *t)
{
	ks_kube_free(t->kube);
	ks_http_free(t->http);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	ks_require(uv_loop_close(&t->loop) == 0);
	ks_kubeconfig_deinit(&t->cfg);
}

void kt_res_clear(struct kt_res *r)
{
	cJSON_Delete(r->body);
	memset(r, 0, sizeof(*r));
}

void kt_store(struct ks_kube_result *res, void *data)
{
	struct kt_res *r = data;

	cJSON_Delete(r->body);
	r->done = true;
	r->code = res->code;
	snprintf(r->reason, sizeof(r->reason), "%s", res->reason);
	snprintf(r->message, sizeof(r->message), "%s", res->message);
	r->body = res->body;
	res->body = NULL;
}

static void on_deadline(uv_timer_t *tm)
{
	*(bool *)tm->data = true;
}

static bool run_until(struct kt *t, bool (*pred)(void *), void *data, double seconds)
{
	uv_timer_t tm;
	bool expired = false, ok;

	uv_timer_init(&t->loop, &tm);
	tm.data = &expired;
	uv_timer_start(&tm, on_deadline, (uint64_t)(seconds * 1000), 0);
	while (!(ok = pred(data)) && !expired)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tm, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool res_done(void *data)
{
	return ((struct kt_res *)data)->done;
}

void kt_wait(struct kt *t, struct kt_res *r, double seconds)
{
	if (!run_until(t, res_done, r, seconds)) {
		fprintf(stderr, "no answer within %.0f s\n", seconds);
		exit(3);
	}
}

bool kt_until(struct kt *t, bool (*pred)(void *data), void *data, double seconds)
{
	return run_until(t, pred, data, seconds);
}

static bool never(void *data)
{
	(void)data;
	return false;
}

void kt_run_for(struct kt *t, double seconds)
{
	run_until(t, never, NULL, seconds);
}

int kt_sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *full;
	int rc;

	va_start(ap, fmt);
	cmd = ks_xvasprintf(fmt, ap);
	va_end(ap);
	full = ks_xasprintf("%s 1>&2", cmd);
	rc = system(full);
	free(cmd);
	free(full);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

void kt_ensure_crd(struct kt *t)
{
	struct kt_res r = { 0 };

	if (kt_sh("kubectl apply -f tests/kube/widget-crd.yaml >/dev/null") != 0 ||
	    kt_sh("kubectl wait --for condition=established --timeout=60s "
		  "crd/widgets.test.kupenstack.io >/dev/null") != 0) {
		fprintf(stderr, "could not install the test CRD\n");
		exit(2);
	}
	/* Established is not always served yet: poll the collection. */
	for (int i = 0; i < 100; i++) {
		kt_res_clear(&r);
		ks_kube_list(t->kube, &kt_widgets, "default", NULL, kt_store, &r);
		kt_wait(t, &r, 10);
		if (ks_kube_ok(&(struct ks_kube_result){ .code = r.code }))
			break;
		kt_run_for(t, 0.1);
	}
	kt_res_clear(&r);
}

void kt_fresh_namespace(struct kt *t, const char *ns)
{
	(void)t;
	kt_sh("kubectl delete namespace %s --ignore-not-found --wait=true >/dev/null 2>&1", ns);
	if (kt_sh("kubectl create namespace %s >/dev/null", ns) != 0) {
		fprintf(stderr, "could not create namespace %s\n", ns);
		exit(2);
	}
}

cJSON *kt_widget(const char *ns, const char *name, int size)
{
	cJSON *o = cJSON_CreateObject(), *m, *s;

	cJSON_AddStringToObject(o, "apiVersion", "test.kupenstack.io/v1");
	cJSON_AddStringToObject(o, "kind", "Widget");
	m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(m, "namespace", ns);
	s = cJSON_AddObjectToObject(o, "spec");
	cJSON_AddNumberToObject(s, "size", size);
	return o;
}

/* The proxy: each accepted client is paired with a connection to the target. */
struct pconn;

struct kt_proxy {
	struct kt *t;
	uv_tcp_t listener;
	struct sockaddr_in target;
	enum kt_proxy_mode mode;
	struct pconn *conns;
	unsigned accepted;
	int port;
};

struct pconn {
	struct kt_proxy *p;
	uv_tcp_t client, upstream;
	uv_connect_t connect;
	int open; /* handles still open */
	bool closing;
	struct pconn *next;
};

static void pconn_closed(uv_handle_t *h)
{
	struct pconn *c = h->data;

	if (--c->open == 0)
		free(c);
}

static void pconn_close(struct pconn *c)
{
	struct pconn **pp;

	if (c->closing)
		return;
	c->closing = true;
	for (pp = &c->p->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&c->client, pconn_closed);
	uv_close((uv_handle_t *)&c->upstream, pconn_closed);
}

static void palloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(n);
	b->len = b->base ? n : 0;
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void on_proxy_read(uv_stream_t *from, ssize_t n, const uv_buf_t *b)
{
	struct pconn *c = from->data;
	uv_stream_t *to =
		(uv_stream_t *)(from == (uv_stream_t *)&c->client ? &c->upstream : &c->client);
	uv_write_t *w;
	uv_buf_t out;

	if (n < 0) {
		free(b->base);
		pconn_close(c);
		return;
	}
	if (n == 0 || c->p->mode != KT_PROXY_FORWARD) {
		free(b->base); /* stalled: the bytes vanish */
		return;
	}
	w = ks_xmalloc(sizeof(*w));
	w->data = b->base;
	out = uv_buf_init(b->base, (unsigned)n);
	if (uv_write(w, to, &out, 1, on_written) != 0) {
		free(b->base);
		free(w);
		pconn_close(c);
	}
}

static void on_upstream(uv_connect_t *req, int status)
{
	struct pconn *c = req->data;

	if (status < 0 || c->closing) {
		pconn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->client, palloc, on_proxy_read);
	uv_read_start((uv_stream_t *)&c->upstream, palloc, on_proxy_read);
}

static void on_accept(uv_stream_t *server, int status)
{
	struct kt_proxy *p = server->data;
	struct pconn *c;

	if (status < 0)
		return;
	c = ks_xcalloc(1, sizeof(*c));
	c->p = p;
	uv_tcp_init(&p->t->loop, &c->client);
	uv_tcp_init(&p->t->loop, &c->upstream);
	c->client.data = c->upstream.data = c->connect.data = c;
	c->open = 2;
	c->next = p->conns;
	p->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->client) != 0) {
		pconn_close(c);
		return;
	}
	p->accepted++;
	if (p->mode == KT_PROXY_REFUSE) {
		pconn_close(c);
		return;
	}
	uv_tcp_connect(&c->connect, &c->upstream, (struct sockaddr *)&p->target, on_upstream);
}

struct kt_proxy *kt_proxy_start(struct kt *t, const char *host, int port)
{
	struct kt_proxy *p = ks_xcalloc(1, sizeof(*p));
	struct sockaddr_in any;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	p->t = t;
	uv_ip4_addr(host, port, &p->target);
	uv_ip4_addr("127.0.0.1", 0, &any);
	uv_tcp_init(&t->loop, &p->listener);
	p->listener.data = p;
	ks_require(uv_tcp_bind(&p->listener, (struct sockaddr *)&any, 0) == 0);
	ks_require(uv_listen((uv_stream_t *)&p->listener, 64, on_accept) == 0);
	uv_tcp_getsockname(&p->listener, (struct sockaddr *)&ss, &len);
	p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return p;
}

int kt_proxy_port(const struct kt_proxy *p)
{
	return p->port;
}

unsigned kt_proxy_accepted(const struct kt_proxy *p)
{
	return p->accepted;
}

void kt_proxy_set_mode(struct kt_proxy *p, enum kt_proxy_mode mode)
{
	p->mode = mode;
	if (mode == KT_PROXY_REFUSE) {
		while (p->conns)
			pconn_close(p->conns);
	}
}

static void listener_closed(uv_handle_t *h)
{
	free(h->data);
}

void kt_proxy_stop(struct kt_proxy *p)
{
	while (p->conns)
		pconn_close(p->conns);
	uv_close((uv_handle_t *)&p->listener, listener_closed);
}
