/*
 * kt_stream.c: the reflector against an API server that breaks its watch streams on
 * purpose. A small HTTP server on the test's loop plays the API server for one kind
 * (Widgets in one namespace): it answers LISTs from its own truth and, on WATCH, sends
 * what each test tells it to: (a) a line of garbage mid-stream, (b) an event cut off
 * mid-chunk and the connection closed, (c) an event past the decoder's limit, (d) a
 * 410 ERROR event, (e) a 410 to a watch reopened from a compacted resourceVersion.
 * Each test checks that the reflector counts the error, applies nothing the broken
 * stream held after the break, resumes from the last event it applied (or relists),
 * and ends with a cache equal to the server's truth.
 *
 * Plain HTTP, not TLS: the client (http.c) accepts http:// as well as https://
 * (CURLOPT_PROTOCOLS_STR "http,https"); only the kubeconfig parser insists on https,
 * so the test hands ks_kube_new() a configuration it builds itself. What is under test
 * is the stream handling above the transport, the same for both; TLS is exercised by
 * the other kt_* tests, against the real API server. This test needs no cluster.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kt.h"
#include "watch.h"

#define NS "kt-stream"
#define PATH "/apis/test.kupenstack.io/v1/namespaces/" NS "/widgets"
#define MAX_OBJS 16
#define MIB (1u << 20)
/* The decoder's limit, as watch.c sets it (ks_watch_decoder_init with 0), and more. */
#define HUGE_MIB 66

static struct kt t;

/* --- the fake API server ------------------------------------------------------------- */

struct fobj {
	char name[32];
	int rv, created, size;
	bool deleted;
};

struct fconn;

struct fake {
	uv_tcp_t listener;
	int port;
	struct fobj objs[MAX_OBJS];
	int nobjs;
	int rv;
	int compacted;	     /* a watch from before this resourceVersion gets a 410 */
	struct fconn *watch; /* the open watch stream */
	struct fconn *conns;
	unsigned lists, watches;
	int watch_from; /* the resourceVersion the last watch asked for */
};

struct fconn {
	struct fake *f;
	uv_tcp_t tcp;
	struct ks_buf in;
	bool closing;
	struct fconn *next;
};

struct wreq {
	uv_write_t w;
	struct fconn *c;
	bool close; /* close the connection once this is written */
	char data[];
};

static void conn_closed(uv_handle_t *h)
{
	struct fconn *c = h->data;

	ks_buf_deinit(&c->in);
	free(c);
}

static void conn_close(struct fconn *c)
{
	struct fconn **pp;

	if (c->closing)
		return;
	c->closing = true;
	if (c->f->watch == c)
		c->f->watch = NULL;
	for (pp = &c->f->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
	struct wreq *r = KS_CONTAINER_OF(w, struct wreq, w);

	(void)status; /* the client may have gone: (c) leaves most of its write unread */
	if (r->close)
		conn_close(r->c);
	free(r);
}

/* Write bufs (copied unless copy is false: then they must outlive the write). */
static void conn_write(struct fconn *c, const uv_buf_t *bufs, unsigned n, bool copy, bool close)
{
	size_t len = 0;
	struct wreq *r;
	uv_buf_t one;

	for (unsigned i = 0; copy && i < n; i++)
		len += bufs[i].len;
	r = ks_xcalloc(1, sizeof(*r) + len);
	r->c = c;
	r->close = close;
	if (copy) {
		len = 0;
		for (unsigned i = 0; i < n; i++) {
			memcpy(r->data + len, bufs[i].base, bufs[i].len);
			len += bufs[i].len;
		}
		one = uv_buf_init(r->data, (unsigned)len);
		bufs = &one;
		n = 1;
	}
	if (c->closing || uv_write(&r->w, (uv_stream_t *)&c->tcp, bufs, n, on_written) != 0)
		free(r);
}

static void conn_puts(struct fconn *c, const char *s, size_t n, bool close)
{
	uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);

	conn_write(c, &b, 1, true, close);
}

/* One HTTP chunk holding s; an empty s ends the response. */
static void chunk(struct fconn *c, const char *s, size_t n)
{
	char *b = ks_xasprintf("%zx\r\n%.*s\r\n", n, (int)n, s);

	conn_puts(c, b, strlen(b), false);
	free(b);
}

static struct fobj *find(struct fake *f, const char *name)
{
	for (int i = 0; i < f->nobjs; i++) {
		if (!strcmp(f->objs[i].name, name))
			return &f->objs[i];
	}
	return NULL;
}

static char *obj_json(const struct fobj *o)
{
	return ks_xasprintf("{\"apiVersion\":\"test.kupenstack.io/v1\",\"kind\":\"Widget\","
			    "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"uid\":"
			    "\"uid-%s\",\"resourceVersion\":\"%d\",\"generation\":1},"
			    "\"spec\":{\"size\":%d}}",
			    o->name, o->name, o->rv, o->size);
}

/* The event line for o, as a watch from resourceVersion from sees it. */
static char *event_line(const struct fobj *o, int from)
{
	char *obj = obj_json(o), *line;
	const char *type = o->deleted ? "DELETED" : o->created > from ? "ADDED" : "MODIFIED";

	line = ks_xasprintf("{\"type\":\"%s\",\"object\":%s}\n", type, obj);
	free(obj);
	return line;
}

/* The truth changes: name is created or updated to size, or deleted. */
static struct fobj *fake_put(struct fake *f, const char *name, int size)
{
	struct fobj *o = find(f, name);

	if (!o) {
		ks_require(f->nobjs < MAX_OBJS);
		o = &f->objs[f->nobjs++];
		snprintf(o->name, sizeof(o->name), "%s", name);
	}
	o->rv = ++f->rv;
	if (!o->created || o->deleted)
		o->created = o->rv;
	o->deleted = false;
	o->size = size;
	return o;
}

static void fake_del(struct fake *f, const char *name)
{
	struct fobj *o = find(f, name);

	o->rv = ++f->rv;
	o->deleted = true;
}

static void serve_list(struct fake *f, struct fconn *c)
{
	struct ks_buf b;
	char *head;
	bool first = true;

	ks_buf_init(&b);
	ks_buf_printf(&b,
		      "{\"apiVersion\":\"test.kupenstack.io/v1\",\"kind\":\"WidgetList\","
		      "\"metadata\":{\"resourceVersion\":\"%d\"},\"items\":[",
		      f->rv);
	for (int i = 0; i < f->nobjs; i++) {
		char *o;

		if (f->objs[i].deleted)
			continue;
		o = obj_json(&f->objs[i]);
		ks_buf_printf(&b, "%s%s", first ? "" : ",", o);
		free(o);
		first = false;
	}
	ks_buf_puts(&b, "]}");
	head = ks_xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\n\r\n",
			    b.len);
	conn_puts(c, head, strlen(head), false);
	conn_puts(c, b.data, b.len, false);
	free(head);
	ks_buf_deinit(&b);
	f->lists++;
}

static const char gone_event[] =
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":"
	"{},\"status\":\"Failure\",\"message\":\"too old resource version\",\"reason\":"
	"\"Expired\",\"code\":410}}\n";

/* The stream opens with every change after from, oldest first, then stays open. */
static void serve_watch(struct fake *f, struct fconn *c, int from)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	struct ks_buf b;

	f->watches++;
	f->watch_from = from;
	conn_puts(c, head, sizeof(head) - 1, false);
	if (from < f->compacted) {
		chunk(c, gone_event, sizeof(gone_event) - 1);
		chunk(c, "", 0);
		return;
	}
	ks_buf_init(&b);
	for (int rv = from + 1; rv <= f->rv; rv++) {
		for (int i = 0; i < f->nobjs; i++) {
			const struct fobj *o = &f->objs[i];
			char *line;

			if (o->rv != rv || (o->deleted && o->created > from))
				continue;
			line = event_line(o, from);
			ks_buf_puts(&b, line);
			free(line);
		}
	}
	if (b.len)
		chunk(c, b.data, b.len);
	ks_buf_deinit(&b);
	f->watch = c;
}

static void serve(struct fake *f, struct fconn *c, const char *target)
{
	static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json"
					"\r\nContent-Length: 2\r\n\r\n{}";
	const char *q = strchr(target, '?'), *rv;
	size_t plen = q ? (size_t)(q - target) : strlen(target);

	if (plen != strlen(PATH) || strncmp(target, PATH, plen) != 0) {
		conn_puts(c, not_found, sizeof(not_found) - 1, false);
		return;
	}
	if (q && strstr(q, "watch=1")) {
		rv = strstr(q, "resourceVersion=");
		serve_watch(f, c, rv ? atoi(rv + strlen("resourceVersion=")) : 0);
	} else {
		serve_list(f, c);
	}
}

static void conn_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)h;
	b->base = ks_xmalloc(n);
	b->len = n;
}

/* Requests are GETs without bodies: each ends at its blank line. */
static void on_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fconn *c = s->data;
	char *end;

	if (n < 0) {
		free(b->base);
		conn_close(c);
		return;
	}
	ks_buf_append(&c->in, b->base, (size_t)n);
	free(b->base);
	while (!c->closing && c->in.len && (end = strstr(c->in.data, "\r\n\r\n"))) {
		char method[8], target[512];

		if (sscanf(c->in.data, "%7s %511s", method, target) == 2)
			serve(c->f, c, target);
		ks_buf_consume(&c->in, (size_t)(end + 4 - c->in.data));
	}
}

static void on_accept(uv_stream_t *server, int status)
{
	struct fake *f = server->data;
	struct fconn *c;

	if (status < 0)
		return;
	c = ks_xcalloc(1, sizeof(*c));
	c->f = f;
	ks_buf_init(&c->in);
	uv_tcp_init(&t.loop, &c->tcp);
	c->tcp.data = c;
	c->next = f->conns;
	f->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, on_conn_read);
}

static struct fake *fake_start(void)
{
	struct fake *f = ks_xcalloc(1, sizeof(*f));
	struct sockaddr_storage ss;
	struct sockaddr_in any;
	int len = sizeof(ss);

	uv_ip4_addr("127.0.0.1", 0, &any);
	uv_tcp_init(&t.loop, &f->listener);
	f->listener.data = f;
	ks_require(uv_tcp_bind(&f->listener, (struct sockaddr *)&any, 0) == 0);
	ks_require(uv_listen((uv_stream_t *)&f->listener, 16, on_accept) == 0);
	uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return f;
}

static void listener_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fake_stop(struct fake *f)
{
	while (f->conns)
		conn_close(f->conns);
	uv_close((uv_handle_t *)&f->listener, listener_closed);
}

/* --- the reflector under test, and what its handlers saw ----------------------------- */

struct rig {
	struct fake *f;
	struct ks_kube *kube;
	struct ks_cache *cache;
	struct ks_watch *w;
	struct ks_buf log; /* "A key rv", "U key rv", "D key" */
	int adds, updates, deletes;
};

static void on_add(const struct ks_cache_obj *o, void *d)
{
	struct rig *r = d;

	r->adds++;
	ks_buf_printf(&r->log, "A %s %s\n", o->key, o->resource_version);
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *d)
{
	struct rig *r = d;

	(void)old;
	r->updates++;
	ks_buf_printf(&r->log, "U %s %s\n", o->key, o->resource_version);
}

static void on_delete(const struct ks_cache_obj *o, void *d)
{
	struct rig *r = d;

	r->deletes++;
	ks_buf_printf(&r->log, "D %s\n", o->key);
}

static bool watching(void *d)
{
	struct rig *r = d;

	return ks_watch_synced(r->w) && r->f->watch;
}

/* A fake server holding widgets a and b, and a reflector with its watch open. */
static bool rig_start(struct rig *r)
{
	struct ks_kubeconfig cfg = { 0 };

	memset(r, 0, sizeof(*r));
	r->f = fake_start();
	fake_put(r->f, "a", 1);
	fake_put(r->f, "b", 2);
	cfg.server = ks_xasprintf("http://127.0.0.1:%d", r->f->port);
	cfg.namespace = NS;
	r->kube = ks_kube_new(t.http, &cfg);
	free(cfg.server);
	r->cache = ks_cache_new();
	ks_buf_init(&r->log);
	ks_cache_add_handler(r->cache,
			     &(struct ks_cache_handler){ on_add, on_update, on_delete, r });
	r->w = ks_watch_new(&t.loop, r->kube, r->cache,
			    &(struct ks_watch_opts){ .res = kt_widgets, .namespace = NS });
	ks_watch_start(r->w);
	return kt_until(&t, watching, r, 10);
}

static void rig_stop(struct rig *r)
{
	ks_watch_free(r->w);
	fake_stop(r->f);
	kt_run_for(&t, 0.05);
	ks_cache_free(r->cache);
	ks_kube_free(r->kube);
	ks_buf_deinit(&r->log);
}

static struct ks_watch_stats stats(const struct rig *r)
{
	struct ks_watch_stats st;

	ks_watch_get_stats(r->w, &st);
	return st;
}

static bool errored(void *d)
{
	return stats(d).errors > 0;
}

/* The resourceVersion the cache holds for name, or -1. */
static int cached_rv(const struct rig *r, const char *name)
{
	const struct ks_cache_obj *o = ks_cache_get(r->cache, NS, name);

	return o ? atoi(o->resource_version) : -1;
}

/* Does the cache hold exactly the server's truth, object for object? */
static bool matches(void *d)
{
	struct rig *r = d;
	size_t live = 0;

	for (int i = 0; i < r->f->nobjs; i++) {
		const struct fobj *fo = &r->f->objs[i];
		const struct ks_cache_obj *o = ks_cache_get(r->cache, NS, fo->name);
		char *want;
		cJSON *a, *b;
		bool same;

		if (fo->deleted) {
			if (o)
				return false;
			continue;
		}
		live++;
		if (!o || atoi(o->resource_version) != fo->rv)
			return false;
		want = obj_json(fo);
		a = ks_json_parse(want, strlen(want));
		b = ks_json_parse(o->json, o->len);
		same = ks_json_equal(a, b);
		cJSON_Delete(a);
		cJSON_Delete(b);
		free(want);
		if (!same)
			return false;
	}
	return live == ks_cache_len(r->cache);
}

/* Two changes on the stream; the test breaks it between them. */
struct two {
	char *first, *second;
	int rv_a, rv_b_before;
};

static void two_changes(struct rig *r, struct two *x)
{
	int from = r->f->rv;

	x->rv_b_before = find(r->f, "b")->rv;
	x->rv_a = fake_put(r->f, "a", 10 + r->f->rv)->rv;
	x->first = event_line(find(r->f, "a"), from);
	fake_put(r->f, "b", 20 + r->f->rv);
	x->second = event_line(find(r->f, "b"), from);
}

/* The stream broke after a's change: a's is applied, b's is not (yet). */
static bool broke_between(struct rig *r, const struct two *x)
{
	return kt_until(&t, errored, r, 60) && cached_rv(r, "a") == x->rv_a &&
	       cached_rv(r, "b") == x->rv_b_before;
}

/* ...then it resumed from a's resourceVersion, no relist, and caught up. */
static bool resumed(struct rig *r, const struct two *x)
{
	bool ok = kt_until(&t, matches, r, 30);

	return ok && r->f->watch_from == x->rv_a && stats(r).relists == 0 && r->f->lists == 1 &&
	       r->f->watches == 2 && r->updates == 2 && r->adds == 2 && r->deletes == 0;
}

static void two_free(struct two *x)
{
	free(x->first);
	free(x->second);
}

TEST(garbage_line_mid_stream)
{
	static struct rig r;
	struct two x;
	char *body;

	ASSERT(rig_start(&r));
	two_changes(&r, &x);
	body = ks_xasprintf("%sthis is not a watch event\n%s", x.first, x.second);
	chunk(r.f->watch, body, strlen(body));
	free(body);
	ASSERT(broke_between(&r, &x));
	ASSERT(resumed(&r, &x));
	ASSERT_EQ(stats(&r).errors, 1);
	two_free(&x);
	rig_stop(&r);
}

TEST(chunk_cut_mid_event_then_connection_closed)
{
	static struct rig r;
	struct two x;
	char *head;
	size_t n;

	ASSERT(rig_start(&r));
	two_changes(&r, &x);
	chunk(r.f->watch, x.first, strlen(x.first));
	/* A chunk announced whole, half of it sent, then the end of the connection. */
	n = strlen(x.second);
	head = ks_xasprintf("%zx\r\n", n);
	conn_puts(r.f->watch, head, strlen(head), false);
	conn_puts(r.f->watch, x.second, n / 2, true);
	free(head);
	ASSERT(broke_between(&r, &x));
	ASSERT(resumed(&r, &x));
	ASSERT_EQ(stats(&r).errors, 1);
	two_free(&x);
	rig_stop(&r);
}

TEST(event_past_the_decoder_limit)
{
	static struct rig r;
	static char blob[MIB];
	static const char crlf[] = "\r\n", size_line[] = "100000\r\n";
	struct two x;
	char *head;

	ASSERT(rig_start(&r));
	two_changes(&r, &x);
	/* b's change arrives as a 66 MiB event: refused, and a later change of b (at the
	 * same resourceVersion here: the server's log kept only the last) comes on
	 * reconnect. */
	memset(blob, 'x', sizeof(blob));
	chunk(r.f->watch, x.first, strlen(x.first));
	head = ks_xasprintf("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\","
			    "\"namespace\":\"" NS "\",\"resourceVersion\":\"%d\"},\"spec\":"
			    "{\"blob\":\"",
			    find(r.f, "b")->rv);
	chunk(r.f->watch, head, strlen(head));
	free(head);
	for (int i = 0; i < HUGE_MIB; i++) {
		uv_buf_t b[3] = { uv_buf_init((char *)size_line, sizeof(size_line) - 1),
				  uv_buf_init(blob, MIB), uv_buf_init((char *)crlf, 2) };

		conn_write(r.f->watch, b, 3, false, false);
	}
	chunk(r.f->watch, "\"}}}\n", 5);
	ASSERT(broke_between(&r, &x));
	ASSERT(resumed(&r, &x));
	ASSERT_EQ(stats(&r).errors, 1);
	two_free(&x);
	rig_stop(&r);
}

static bool relisted(void *d)
{
	return stats(d).relists > 0 && matches(d);
}

TEST(error_event_410_mid_stream_relists)
{
	static struct rig r;
	char *body;

	ASSERT(rig_start(&r));
	/* Changes the stream never carries, then compaction past them. */
	fake_del(r.f, "b");
	fake_put(r.f, "c", 3);
	fake_put(r.f, "a", 4);
	r.f->compacted = r.f->rv;
	/* After the ERROR, an event no server would send: it must not be applied. */
	body = ks_xasprintf("%s{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"ghost\","
			    "\"namespace\":\"" NS "\",\"resourceVersion\":\"424242\"}}}\n",
			    gone_event);
	chunk(r.f->watch, body, strlen(body));
	chunk(r.f->watch, "", 0);
	free(body);
	ASSERT(kt_until(&t, relisted, &r, 30));
	ASSERT_EQ(stats(&r).relists, 1);
	ASSERT_EQ(stats(&r).errors, 0); /* a 410 is the protocol, not a failure */
	ASSERT_EQ(r.f->lists, 2);
	/* The relist's difference, each change once, and no ghost. */
	ASSERT_EQ(r.adds, 3);
	ASSERT_EQ(r.updates, 1);
	ASSERT_EQ(r.deletes, 1);
	ASSERT(strstr(r.log.data, "D kt-stream/b\n"));
	ASSERT(strstr(r.log.data, "A kt-stream/c 4\n"));
	ASSERT(strstr(r.log.data, "U kt-stream/a 5\n"));
	ASSERT(!strstr(r.log.data, "ghost"));
	ASSERT(!ks_cache_get(r.cache, NS, "ghost"));
	rig_stop(&r);
}

TEST(watch_reopened_from_a_compacted_version_relists)
{
	static struct rig r;

	ASSERT(rig_start(&r));
	/* The connection drops; while the reflector waits to reconnect, the server moves
	 * on and compacts: the reopened watch is answered with a 410. */
	conn_close(r.f->watch);
	fake_del(r.f, "a");
	fake_put(r.f, "d", 7);
	r.f->compacted = r.f->rv;
	ASSERT(kt_until(&t, relisted, &r, 30));
	ASSERT_EQ(stats(&r).relists, 1);
	ASSERT(r.f->watches >= 3); /* the first, the one answered 410, the one after */
	ASSERT_EQ(r.deletes, 1);
	ASSERT(strstr(r.log.data, "D kt-stream/a\n"));
	ASSERT(strstr(r.log.data, "A kt-stream/d 4\n"));
	rig_stop(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* (c) writes on after the client hung up */
	uv_loop_init(&t.loop);
	t.http = ks_http_new(&t.loop);
	RUN(garbage_line_mid_stream);
	RUN(chunk_cut_mid_event_then_connection_closed);
	RUN(event_past_the_decoder_limit);
	RUN(error_event_410_mid_stream_relists);
	RUN(watch_reopened_from_a_compacted_version_relists);
	KT_MAIN_END(&t);
}
