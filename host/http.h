#pragma once
/*
 * http.h: an asynchronous HTTP/1.1 client: one libcurl multi handle driven by the
 * libuv loop the way curl's docs/examples/multi-uv.c does. Connections are kept
 * alive and reused between requests to the same host. TLS verification is always
 * on; there is no option to turn it off.
 *
 * Every callback runs from the loop, after libcurl has returned: never from inside
 * a libcurl callback, and never from inside ks_http_request() itself. So a callback
 * may start new requests or cancel any request, its own included.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ks.h"
#include "netguard.h"

struct ks_http;
struct ks_http_req;

/* Where to find the trust anchors and the client identity; each as a file or PEM data. */
struct ks_http_tls {
	const char *ca_file;
	const char *ca_data;
	size_t ca_len;
	const char *cert_file;
	const char *cert_data;
	size_t cert_len;
	const char *key_file;
	const char *key_data;
	size_t key_len;
};

struct ks_http_resp {
	/* HTTP status, or 0 when no response came (then err says why). */
	long status;
	/* 0, or a negative errno: -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -ECANCELED
	 * (the data callback asked to stop), -EPROTO (TLS or protocol), -EACCES (the
	 * guard refused the address), -EIO. */
	int err;
	/* libcurl's one-line explanation when err != 0, else "". */
	const char *errmsg;
	/* The body, unless it was streamed to on_data. Always NUL-terminated. */
	struct ks_buf body;
	/* The raw response headers of the final response, "Name: value\r\n" each. */
	struct ks_buf headers;
	/* Seconds from start to completion. */
	double elapsed;
};

/*
 * Called once per request with the response. resp and everything it points to
 * belong to the client and are gone after the callback returns.
 */
typedef void (*ks_http_done_cb)(struct ks_http_req *req, const struct ks_http_resp *resp,
				void *data);
/*
 * Streaming: called with each piece of a 2xx body as it arrives, in order (a non-2xx
 * body is buffered in resp->body instead). Return 0 to go on; non-zero aborts the
 * request, which then completes with err -ECANCELED.
 */
typedef int (*ks_http_data_cb)(struct ks_http_req *req, const char *p, size_t n, void *data);

struct ks_http_opts {
	const char *method; /* "GET" if NULL */
	const char *url;
	/* NULL-terminated "Name: value" strings, or NULL. Copied. */
	const char *const *headers;
	/* The request body, copied; NULL for none. */
	const void *body;
	size_t body_len;
	/* Whole-request limit, 0 for none (watches use their own silence detection). */
	long timeout_ms;
	/* 0 means 10 s. */
	long connect_timeout_ms;
	/* A buffered body past this many bytes fails the request with -EFBIG; 0 means
	 * 512 MiB. (A streamed body, on_data, is not buffered.) */
	size_t max_body;
	/* NULL uses the system's trust store. */
	const struct ks_http_tls *tls;
	/* When set (copied): the request's connection is a fresh one (never one of the
	 * pool, nor kept for it), opened only to an address the guard allows (netguard.h),
	 * with no proxy (redirects are not followed); a refused address fails the request
	 * with -EACCES and errmsg saying why. For URLs a tenant names. */
	const struct ks_netguard *guard;
	ks_http_data_cb on_data;
	ks_http_done_cb on_done;
	void *data;
};

/* Create a client on loop. Never NULL (aborts if libcurl cannot start). */
struct ks_http *ks_http_new(uv_loop_t *loop);
/*
 * Cancel every outstanding request (no callback fires for them) and free the
 * client once its handles are closed; the loop must run for that to finish.
 */
void ks_http_free(struct ks_http *h);

/*
 * Start a request. Returns a handle valid until on_done has returned or the request
 * was cancelled; NULL (with no callback) only if libcurl refused the options, which
 * is a caller bug. on_done fires exactly once unless ks_http_cancel() is called first.
 */
struct ks_http_req *ks_http_request(struct ks_http *h, const struct ks_http_opts *o);
/* Abandon a request: no callback fires for it afterwards. Safe from any callback. */
void ks_http_cancel(struct ks_http_req *req);

/*
 * The value of response header name (case-insensitive) copied into out[0..cap), or
 * NULL when absent. A value longer than cap is cut.
 */
const char *ks_http_header(const struct ks_http_resp *resp, const char *name, char *out,
			   size_t cap);

/* Number of requests started and not yet finished (for tests and /readyz). */
size_t ks_http_pending(const struct ks_http *h);
