/*
 * http.c: libcurl multi driven by libuv (curl's docs/examples/multi-uv.c), with every
 * user callback deferred until libcurl has returned to us.
 */
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "curl_uv.h"
#include "list.h"
#include "log.h"

/* A body we buffer larger than this is refused: nothing the host asks for is this big. */
#define MAX_BODY (512u << 20)

struct ks_http_req {
	struct ks_http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	ks_http_done_cb on_done;
	ks_http_data_cb on_data;
	void *data;
	struct ks_buf stream;
	struct ks_http_resp resp;
	uint64_t t0;
	bool cancelled;
	bool completing;
	bool too_big;
	size_t max_body;
	struct ks_netguard *guard; /* NULL: unguarded */
	char refused[200];	   /* why the guard refused a connection, or "" */
	struct ks_list link;	   /* in h->reqs or h->reap */
	char errbuf[CURL_ERROR_SIZE];
};

struct ks_http {
	uv_loop_t *loop;
	struct ks_curl_uv cu; /* the multi handle on the loop */
	struct ks_list reqs;  /* started, not completed */
	struct ks_list reap;  /* completed or cancelled while dispatching: freed after */
	size_t pending;
	int dispatching;
};

/* The first request of l, or NULL. */
static struct ks_http_req *first_req(const struct ks_list *l)
{
	struct ks_list *n = ks_list_first(l);

	return n ? KS_CONTAINER_OF(n, struct ks_http_req, link) : NULL;
}

static void req_free(struct ks_http_req *r)
{
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	free(r->guard);
	ks_buf_deinit(&r->stream);
	ks_buf_deinit(&r->resp.body);
	ks_buf_deinit(&r->resp.headers);
	free(r);
}

static void client_closed(struct ks_curl_uv *cu)
{
	free(KS_CONTAINER_OF(cu, struct ks_http, cu));
}

static int curl_err(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_WRITE_ERROR:
		return -ECANCELED;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPROTO;
	default:
		return -EIO;
	}
}

static bool status_ok(struct ks_http_req *r)
{
	long status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	return status >= 200 && status < 300;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct ks_http_req *r = ud;
	size_t len = size * n;

	if (r->cancelled)
		return 0;
	if (r->on_data && status_ok(r)) {
		ks_buf_append(&r->stream, p, len);
		return len;
	}
	if (r->resp.body.len + len > r->max_body) {
		r->too_big = true;
		return 0;
	}
	ks_buf_append(&r->resp.body, p, len);
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct ks_http_req *r = ud;
	size_t len = size * n;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		ks_buf_reset(&r->resp.headers);
	ks_buf_append(&r->resp.headers, p, len);
	return len;
}

/* Deliver what was streamed; false if the consumer asked to stop. */
static bool deliver_stream(struct ks_http_req *r)
{
	int rc;

	if (!r->stream.len || r->cancelled)
		return true;
	rc = r->on_data(r, r->stream.data, r->stream.len, r->data);
	ks_buf_reset(&r->stream);
	return rc == 0;
}

static void complete(struct ks_http *h, struct ks_http_req *r, CURLcode rc)
{
	bool stopped;

	if (r->cancelled)
		return; /* cancelled from its own data callback: already gone */
	stopped = r->on_data && !deliver_stream(r);

	curl_multi_remove_handle(h->cu.multi, r->easy);
	ks_list_del(&r->link);
	h->pending--;
	if (!r->cancelled) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->resp.status);
		r->resp.err = stopped ? -ECANCELED : curl_err(rc);
		if (r->refused[0]) {
			r->resp.err = -EACCES;
			snprintf(r->errbuf, sizeof(r->errbuf), "%s", r->refused);
		}
		if (r->too_big) {
			r->resp.err = -EFBIG;
			snprintf(r->errbuf, sizeof(r->errbuf), "response body over %zu bytes",
				 r->max_body);
		}
		if (r->resp.err && !r->errbuf[0])
			snprintf(r->errbuf, sizeof(r->errbuf), "%s", curl_easy_strerror(rc));
		r->resp.errmsg = r->resp.err ? r->errbuf : "";
		r->resp.elapsed = (double)(ks_now_ns() - r->t0) / 1e9;
		r->completing = true;
		r->on_done(r, &r->resp, r->data);
	}
	ks_list_add(&h->reap, &r->link);
}

/* Deliver streamed data, then completions: all user code runs here, after libcurl. */
static void after_curl(struct ks_curl_uv *cu)
{
	struct ks_http *h = KS_CONTAINER_OF(cu, struct ks_http, cu);
	struct ks_http_req *r, **ready = NULL;
	struct ks_list *l, *nx;
	size_t n = 0, cap = 0;
	CURLMsg *msg;
	int left;

	h->dispatching++;
	/* Snapshot first: a consumer may cancel other requests while we deliver. */
	ks_list_foreach_safe(l, nx, &h->reqs) {
		r = KS_CONTAINER_OF(l, struct ks_http_req, link);
		if (!r->stream.len)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			ready = ks_xrealloc(ready, cap * sizeof(*ready));
		}
		ready[n++] = r;
	}
	for (size_t i = 0; i < n; i++) {
		r = ready[i];
		if (!r->cancelled && !r->completing && !deliver_stream(r))
			complete(h, r, CURLE_WRITE_ERROR);
	}
	free(ready);
	while ((msg = curl_multi_info_read(h->cu.multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		complete(h, r, msg->data.result);
	}
	h->dispatching--;
	if (h->dispatching == 0) {
		while ((r = first_req(&h->reap))) {
			ks_list_del(&r->link);
			req_free(r);
		}
	}
}

struct ks_http *ks_http_new(uv_loop_t *loop)
{
	struct ks_http *h = ks_xcalloc(1, sizeof(*h));

	h->loop = loop;
	ks_list_init(&h->reqs);
	ks_list_init(&h->reap);
	ks_curl_uv_init(&h->cu, loop, after_curl, client_closed);
	curl_multi_setopt(h->cu.multi, CURLMOPT_MAXCONNECTS, 64L);
	return h;
}

void ks_http_free(struct ks_http *h)
{
	struct ks_http_req *r;

	if (!h)
		return;
	while ((r = first_req(&h->reqs))) {
		curl_multi_remove_handle(h->cu.multi, r->easy);
		ks_list_del(&r->link);
		req_free(r);
	}
	while ((r = first_req(&h->reap))) {
		ks_list_del(&r->link);
		req_free(r);
	}
	h->pending = 0;
	ks_curl_uv_close(&h->cu);
}

static void set_tls(CURL *e, const struct ks_http_tls *t)
{
	struct curl_blob blob;

	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!t)
		return;
	if (t->ca_data) {
		blob = (struct curl_blob){ (void *)t->ca_data, t->ca_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	} else if (t->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (t->cert_data) {
		blob = (struct curl_blob){ (void *)t->cert_data, t->cert_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
	} else if (t->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
	}
	if (t->key_data) {
		blob = (struct curl_blob){ (void *)t->key_data, t->key_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
	} else if (t->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
	}
}

static void set_method(struct ks_http_req *r, const struct ks_http_opts *o)
{
	const char *m = o->method ? o->method : "GET";

	if (strcmp(m, "GET") != 0)
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, m);
	if (strcmp(m, "HEAD") == 0)
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	if (o->body) {
		r->body = ks_xmalloc(o->body_len + 1);
		memcpy(r->body, o->body, o->body_len);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
	}
}

/* A guarded request's connections are opened where the guard allows only. */
static curl_socket_t guarded_open(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct ks_http_req *r = ud;

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    !ks_netguard_allows(r->guard, &a->addr, r->refused, sizeof(r->refused)))
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype, a->protocol);
}

static void set_guard(struct ks_http_req *r, const struct ks_netguard *g)
{
	if (!g)
		return;
	r->guard = ks_xmalloc(sizeof(*r->guard));
	*r->guard = *g;
	curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "*");
	/* Never a connection the pool holds from an unguarded request (to an address
	 * the guard refuses), and none left for one to take over. */
	curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, guarded_open);
	curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, r);
}

struct ks_http_req *ks_http_request(struct ks_http *h, const struct ks_http_opts *o)
{
	struct ks_http_req *r = ks_xcalloc(1, sizeof(*r));
	CURL *e;

	ks_list_init(&r->link);
	ks_require(o->url && o->on_done && !h->cu.closing);
	r->h = h;
	r->max_body = o->max_body && o->max_body < MAX_BODY ? o->max_body : MAX_BODY;
	r->on_done = o->on_done;
	r->on_data = o->on_data;
	r->data = o->data;
	r->t0 = ks_now_ns();
	ks_buf_init(&r->stream);
	ks_buf_init(&r->resp.body);
	ks_buf_init(&r->resp.headers);
	r->easy = e = curl_easy_init();
	ks_require(e);
	for (const char *const *hp = o->headers; hp && *hp; hp++)
		r->hdrs = curl_slist_append(r->hdrs, *hp);
	/* No "Expect: 100-continue" round trip for bodies. */
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 o->connect_timeout_ms ? o->connect_timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	set_tls(e, o->tls);
	set_method(r, o);
	set_guard(r, o->guard);
	if (curl_multi_add_handle(h->cu.multi, e) != CURLM_OK) {
		req_free(r);
		return NULL;
	}
	ks_list_add(&h->reqs, &r->link);
	h->pending++;
	return r;
}

void ks_http_cancel(struct ks_http_req *r)
{
	struct ks_http *h = r->h;

	if (r->completing || r->cancelled)
		return;
	r->cancelled = true;
	curl_multi_remove_handle(h->cu.multi, r->easy);
	ks_list_del(&r->link);
	h->pending--;
	if (h->dispatching)
		ks_list_add(&h->reap, &r->link);
	else
		req_free(r);
}

const char *ks_http_header(const struct ks_http_resp *resp, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);
	const char *p = resp->headers.data;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t llen = eol ? (size_t)(eol - p) : strlen(p);

		if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;
			size_t vlen;

			while (v < p + llen && (*v == ' ' || *v == '\t'))
				v++;
			vlen = KS_MIN((size_t)(p + llen - v), cap - 1);
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return out;
		}
		p = eol ? eol + 2 : p + llen;
	}
	return NULL;
}

size_t ks_http_pending(const struct ks_http *h)
{
	return h->pending;
}
