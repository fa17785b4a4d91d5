/* serve.c: a small HTTP/1.1 server on the loop for the operator's own endpoints. */
#include "serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "listen.h"

#define TEXT_TYPE "text/plain; charset=utf-8"

struct conn {
	struct ks_listen_conn lc; /* first: the listener allocates and frees the conn */
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct ks_buf in;
	struct ks_buf head;
	struct ks_buf body;
	size_t scanned; /* bytes of in searched for the end of the head */
	bool writing;
	bool close_after; /* close once the response is out */
	bool draining;	  /* response out and FIN sent: discard input until EOF */
};

struct route {
	char *path;
	ks_serve_fn fn;
	void *data;
};

struct ks_serve {
	struct ks_listen ln;
	struct ks_serve_opts o;
	struct route routes[KS_SERVE_MAX_ROUTES];
	size_t nroutes;
};

struct request {
	char method[16];
	const char *path;
	size_t path_len;
	bool keep_alive;
	bool keep_alive_10; /* HTTP/1.0 asking for keep-alive: say so in the reply */
	bool has_body;
};

/* The listener has closed everything: free the server. */
static void closed(struct ks_listen *ln)
{
	struct ks_serve *s = ln->data;

	for (size_t i = 0; i < s->nroutes; i++)
		free(s->routes[i].path);
	if (s->o.on_free)
		s->o.on_free(s->o.free_data);
	free(s);
}

static void conn_closed(struct ks_listen_conn *lc)
{
	struct conn *c = KS_CONTAINER_OF(lc, struct conn, lc);

	ks_buf_deinit(&c->in);
	ks_buf_deinit(&c->head);
	ks_buf_deinit(&c->body);
}

static void conn_close(struct conn *c)
{
	ks_listen_close(&c->lc);
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
		      status, ks_serve_reason(status), ctype, c->body.len, extra,
		      c->close_after  ? "Connection: close\r\n"
		      : keep_alive_10 ? "Connection: keep-alive\r\n"
				      : "");
	bufs[0] = uv_buf_init(c->head.data, (unsigned)c->head.len);
	if (!head_only && c->body.len)
		bufs[n++] = uv_buf_init(c->body.data, (unsigned)c->body.len);
	uv_read_stop((uv_stream_t *)&c->lc.tcp);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->lc.tcp, bufs, n, on_write) < 0)
		conn_close(c);
	else
		c->writing = true;
}

static void fail(struct conn *c, int status)
{
	c->close_after = true;
	ks_buf_reset(&c->body);
	ks_buf_printf(&c->body, "%s\n", ks_serve_reason(status));
	respond(c, status, TEXT_TYPE, "", false, false);
}

static bool path_is(const struct request *r, const char *path)
{
	return strlen(path) == r->path_len && memcmp(r->path, path, r->path_len) == 0;
}

static const struct route *find_route(const struct ks_serve *s, const struct request *r)
{
	for (size_t i = 0; i < s->nroutes; i++) {
		if (path_is(r, s->routes[i].path))
			return &s->routes[i];
	}
	return NULL;
}

static void route(struct conn *c, const struct request *r)
{
	const struct route *rt = find_route(c->lc.ln->data, r);
	bool head = strcmp(r->method, "HEAD") == 0;
	const char *ctype = TEXT_TYPE, *extra = "";
	int status;

	ks_buf_reset(&c->body);
	if (!rt) {
		status = 404;
		ks_buf_puts(&c->body, "404 page not found\n");
	} else if (!head && strcmp(r->method, "GET") != 0) {
		status = 405;
		extra = "Allow: GET, HEAD\r\n";
		ks_buf_puts(&c->body, "method not allowed\n");
	} else {
		status = rt->fn(rt->data, &c->body, &ctype);
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
	const struct ks_serve *s = c->lc.ln->data;
	size_t n, skip, max = s->o.max_header;
	struct request r;
	int err;

	while (!c->writing && !c->lc.closing && !c->draining) {
		/* Empty lines before a request line are ignored (RFC 9112 2.2). */
		skip = strspn(c->in.data ? c->in.data : "", "\r\n");
		if (skip) {
			ks_buf_consume(&c->in, skip);
			c->scanned = 0;
		}
		n = head_len(c->in.data, c->in.len, c->scanned);
		if (n > max || (!n && c->in.len > max)) {
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
	if (status < 0 || ks_listen_read(&c->lc) < 0)
		conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	c->writing = false;
	ks_buf_deinit(&c->head);
	ks_buf_deinit(&c->body);
	if (status < 0 || c->lc.closing) {
		conn_close(c);
		return;
	}
	ks_listen_touch(&c->lc);
	if (c->close_after) {
		c->draining = true;
		c->sreq.data = c;
		if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->lc.tcp, on_shutdown) < 0)
			conn_close(c);
		return;
	}
	process(c);
	if (!c->writing && !c->lc.closing && ks_listen_read(&c->lc) < 0)
		conn_close(c);
}

static const struct ks_listen_ops ops = {
	.conn_size = sizeof(struct conn),
	.on_read = on_read,
	.conn_closed = conn_closed,
	.closed = closed,
};

const char *ks_serve_reason(int status)
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
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

int ks_serve_parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	return ks_listen_parse_addr(addr, ss);
}

int ks_serve_start(uv_loop_t *loop, const char *addr, const struct ks_serve_opts *opts,
		   struct ks_serve **out)
{
	struct ks_serve *s = ks_xcalloc(1, sizeof(*s));
	int err;

	if (opts)
		s->o = *opts;
	s->o.idle_timeout_ms = s->o.idle_timeout_ms ? s->o.idle_timeout_ms : 30000;
	s->o.max_header = s->o.max_header ? s->o.max_header : 8192;
	s->o.max_conns = s->o.max_conns ? s->o.max_conns : 256;
	err = ks_listen_start(&s->ln, loop, addr, &ops, s, s->o.max_conns, s->o.idle_timeout_ms);
	if (!err)
		*out = s;
	return err;
}

int ks_serve_route(struct ks_serve *s, const char *path, ks_serve_fn fn, void *data)
{
	for (size_t i = 0; i < s->nroutes; i++) {
		if (strcmp(s->routes[i].path, path) == 0)
			return -EEXIST;
	}
	if (s->nroutes == KS_SERVE_MAX_ROUTES)
		return -ENOSPC;
	s->routes[s->nroutes++] =
		(struct route){ .path = ks_xstrdup(path), .fn = fn, .data = data };
	return 0;
}

int ks_serve_port(const struct ks_serve *s)
{
	return s->ln.port;
}

size_t ks_serve_conns(const struct ks_serve *s)
{
	return s->ln.nconns;
}

void ks_serve_stop(struct ks_serve *s)
{
	if (s)
		ks_listen_stop(&s->ln);
}
