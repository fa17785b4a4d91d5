#pragma once
/*
 * serve.h: a small HTTP/1.1 server on the libuv loop for the operator's own endpoints
 * (/metrics, /healthz, /readyz: host/metrics.c), on a listener of listen.h (which
 * admission/https.h shares, adding TLS). Knows no route of its own: a path is
 * answered by the handler registered for it, GET and HEAD only (405 for other methods,
 * 404 for other paths). Keep-alive and pipelining; a request head over max_header bytes
 * gets 431 and the connection is closed; a request with a body ends the connection (bodies
 * are never read); a connection that does not complete a request and read its response
 * within idle_timeout_ms of the previous one (or of connecting) is closed. Single-threaded,
 * like the loop: nothing here locks.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ks.h"

#define KS_SERVE_MAX_ROUTES 16

struct ks_serve;

/*
 * A route's handler, called on the loop while the request is read: append the body to
 * body, set *ctype when it is not "text/plain; charset=utf-8" (a static string), and
 * return the HTTP status (200, 503, ...). For HEAD the body is computed and not sent.
 */
typedef int (*ks_serve_fn)(void *data, struct ks_buf *body, const char **ctype);

struct ks_serve_opts {
	unsigned idle_timeout_ms;    /* 0: 30000 */
	size_t max_header;	     /* 0: 8192 */
	size_t max_conns;	     /* 0: 256; connections beyond are closed at once */
	void (*on_free)(void *data); /* NULL, or called once when the server is freed */
	void *free_data;
};

/*
 * Listen on addr, "host:port" ("127.0.0.1:8080", "[::1]:0", ":8080" for every IPv4
 * address; port 0 picks a free one, see ks_serve_port()). opts may be NULL and is copied.
 * Returns 0 and sets *out, or -EINVAL (a bad address), -EADDRINUSE, -EACCES or another
 * -errno from the socket calls; on error *out is untouched and what was allocated is
 * freed (opts.on_free called) now or once the loop runs again.
 */
int ks_serve_start(uv_loop_t *loop, const char *addr, const struct ks_serve_opts *opts,
		   struct ks_serve **out);
/*
 * Answer GET and HEAD of path (exact, the query string ignored) with fn(data, ...).
 * path is copied. Returns 0, -EEXIST (path has a handler) or -ENOSPC (past
 * KS_SERVE_MAX_ROUTES).
 */
int ks_serve_route(struct ks_serve *s, const char *path, ks_serve_fn fn, void *data);
/* Parse a listen address as ks_serve_start() does (listen.h). Returns 0 or -EINVAL. */
int ks_serve_parse_addr(const char *addr, struct sockaddr_storage *ss);
/* The reason phrase of an HTTP status this server or admission/https.h sends ("Internal
 * Server Error" for one it does not know). */
const char *ks_serve_reason(int status);
/* The port listened on. */
int ks_serve_port(const struct ks_serve *s);
/* Connections open now (for tests). */
size_t ks_serve_conns(const struct ks_serve *s);
/*
 * Stop listening and close every connection, responses in progress included; no handler
 * is called after this; a second call before the server is freed does nothing. The server
 * is freed by the close callbacks (then opts.on_free runs), so the loop must run for that
 * to finish.
 */
void ks_serve_stop(struct ks_serve *s);
