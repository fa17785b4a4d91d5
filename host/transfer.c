/*
 * transfer.c: a GET streamed into a PUT through a 1 MiB buffer, both on one libcurl multi
 * driven by libuv (as host/http.c); the pauses and resumes of either side are made from
 * the loop after libcurl has returned, never from inside a libcurl callback.
 */
#include "transfer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include "curl_uv.h"
#include "digest.h"
#include "list.h"

/* Bytes in flight between the two sides at most (plus one libcurl write, 16 KiB). */
#define BUF_CAP (1u << 20)
/* The destination's answer kept at most. */
#define MAX_DST_BODY (64u << 10)
#define MAX_REDIRS 5L

struct ks_transfer {
	struct ks_curl_uv cu; /* the multi handle on the loop */
	CURL *src, *dst;
	struct curl_slist *dst_hdrs;
	struct ks_netguard guard;
	struct ks_digest digest;
	char *buf;
	size_t head, tail; /* pending bytes: buf[head..tail) */
	uint64_t max_bytes;
	char expect[65];
	bool want_dst, dst_started, src_done, src_paused, dst_paused, ok_to_end;
	bool finished; /* on_done ran, or cancelled: tear down once out of libcurl */
	int busy;
	uint64_t t0;
	ks_transfer_done_cb on_done;
	void *data;
	struct ks_transfer_result res;
	char refused[160];
	char errmsg[CURL_ERROR_SIZE + 256];
	char src_err[CURL_ERROR_SIZE], dst_err[CURL_ERROR_SIZE];
};

static size_t pending(const struct ks_transfer *t)
{
	return t->tail - t->head;
}

static void closed(struct ks_curl_uv *cu)
{
	struct ks_transfer *t = KS_CONTAINER_OF(cu, struct ks_transfer, cu);

	ks_buf_deinit(&t->res.dst_body);
	free(t);
}

/* Drop both connections and free everything once the handles are closed. */
static void teardown(struct ks_transfer *t)
{
	curl_multi_remove_handle(t->cu.multi, t->src);
	if (t->dst_started)
		curl_multi_remove_handle(t->cu.multi, t->dst);
	curl_easy_cleanup(t->src);
	curl_easy_cleanup(t->dst);
	curl_slist_free_all(t->dst_hdrs);
	ks_digest_deinit(&t->digest);
	free(t->buf);
	ks_curl_uv_close(&t->cu);
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
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return -EPROTO;
	default:
		return -EIO;
	}
}

static void digests(struct ks_transfer *t)
{
	ks_digest_finish(&t->digest);
	memcpy(t->res.sha256, t->digest.sha256_hex, sizeof(t->res.sha256));
	memcpy(t->res.md5, t->digest.md5_hex, sizeof(t->res.md5));
}

/* Report (once) and mark for teardown; err 0 is success. */
static void finish(struct ks_transfer *t, int err, const char *side, const char *fmt, ...)
	KS_PRINTF(4, 5);
static void finish(struct ks_transfer *t, int err, const char *side, const char *fmt, ...)
{
	va_list ap;

	if (t->finished)
		return;
	t->finished = true;
	digests(t);
	t->errmsg[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
		va_end(ap);
	}
	t->res.err = err;
	t->res.side = err ? side : NULL;
	t->res.errmsg = err ? t->errmsg : "";
	t->res.elapsed = (double)(ks_now_ns() - t->t0) / 1e9;
	if (t->dst_started)
		curl_easy_getinfo(t->dst, CURLINFO_RESPONSE_CODE, &t->res.dst_status);
	t->on_done(t, &t->res, t->data);
}

/* The source is complete (or failed): check it, and let the destination end or fail. */
static void src_complete(struct ks_transfer *t, CURLcode rc)
{
	int err = curl_err(rc);

	t->src_done = true;
	curl_easy_getinfo(t->src, CURLINFO_RESPONSE_CODE, &t->res.src_status);
	digests(t);
	if (t->refused[0])
		return finish(t, -EACCES, "source", "%s: refused", t->refused);
	if (err == -EFBIG || (rc == CURLE_WRITE_ERROR && t->res.bytes > t->max_bytes))
		return finish(t, -EFBIG, "source", "the data is larger than %llu bytes",
			      (unsigned long long)t->max_bytes);
	if (err)
		return finish(t, err, "source", "%s",
			      t->src_err[0] ? t->src_err : curl_easy_strerror(rc));
	if (t->res.src_status < 200 || t->res.src_status >= 300)
		return finish(t, -EREMOTEIO, "source", "the source answered HTTP %ld",
			      t->res.src_status);
	if (t->expect[0] && strcasecmp(t->expect, t->res.sha256) != 0)
		return finish(t, -EBADMSG, "source", "the data has SHA-256 %s, not %s",
			      t->res.sha256, t->expect);
	t->ok_to_end = true;
	t->want_dst = true; /* an empty body still makes its (empty) upload */
}

static void dst_complete(struct ks_transfer *t, CURLcode rc)
{
	int err = curl_err(rc);

	if (err)
		return finish(t, err, "destination", "%s",
			      t->dst_err[0] ? t->dst_err : curl_easy_strerror(rc));
	curl_easy_getinfo(t->dst, CURLINFO_RESPONSE_CODE, &t->res.dst_status);
	if (!t->src_done) /* answered before the body was all sent: an early refusal */
		return finish(t, -EREMOTEIO, "destination",
			      "the destination answered HTTP %ld before the upload was complete",
			      t->res.dst_status);
	finish(t, 0, NULL, NULL);
}

/* Start the destination, and resume whichever side can go on. */
static void pump(struct ks_transfer *t)
{
	if (t->want_dst && !t->dst_started) {
		t->dst_started = true;
		curl_multi_add_handle(t->cu.multi, t->dst);
	}
	if (t->src_paused && !t->src_done && pending(t) < BUF_CAP / 2) {
		t->src_paused = false;
		curl_easy_pause(t->src, CURLPAUSE_CONT);
	}
	if (t->dst_paused && (pending(t) > 0 || t->ok_to_end)) {
		t->dst_paused = false;
		curl_easy_pause(t->dst, CURLPAUSE_CONT);
	}
}

static void after_curl(struct ks_curl_uv *cu)
{
	struct ks_transfer *t = KS_CONTAINER_OF(cu, struct ks_transfer, cu);
	CURLMsg *m;
	int left;

	t->busy++;
	while (!t->finished && (m = curl_multi_info_read(t->cu.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		if (m->easy_handle == t->src)
			src_complete(t, m->data.result);
		else
			dst_complete(t, m->data.result);
	}
	if (!t->finished)
		pump(t);
	t->busy--;
	if (t->finished && !t->busy)
		teardown(t);
}

/* Source body: into the buffer, hashed, unless the buffer is full (then pause). */
static size_t src_write(char *p, size_t size, size_t n, void *ud)
{
	struct ks_transfer *t = ud;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(t->src, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300)
		return len; /* an error page: dropped, the status says it */
	if (t->max_bytes && t->res.bytes + len > t->max_bytes) {
		t->res.bytes += len;
		return 0;
	}
	if (pending(t) + len > BUF_CAP) {
		t->src_paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (t->tail + len > BUF_CAP + (16u << 10)) {
		memmove(t->buf, t->buf + t->head, pending(t));
		t->tail -= t->head;
		t->head = 0;
	}
	memcpy(t->buf + t->tail, p, len);
	t->tail += len;
	ks_digest_update(&t->digest, p, len);
	t->res.bytes += len;
	t->want_dst = true;
	return len;
}

/* Destination body: from the buffer; its end only once the source is complete and good. */
static size_t dst_read(char *p, size_t size, size_t n, void *ud)
{
	struct ks_transfer *t = ud;
	size_t k = KS_MIN(pending(t), size * n);

	if (k) {
		memcpy(p, t->buf + t->head, k);
		t->head += k;
		if (t->head == t->tail)
			t->head = t->tail = 0;
		return k;
	}
	if (t->ok_to_end)
		return 0;
	if (t->finished)
		return CURL_READFUNC_ABORT;
	t->dst_paused = true;
	return CURL_READFUNC_PAUSE;
}

static size_t dst_write(char *p, size_t size, size_t n, void *ud)
{
	struct ks_transfer *t = ud;
	size_t len = size * n;

	if (t->res.dst_body.len < MAX_DST_BODY)
		ks_buf_append(&t->res.dst_body, p, KS_MIN(len, MAX_DST_BODY - t->res.dst_body.len));
	return len;
}

/* Every connection of the source, the redirects' too, is checked where it really goes. */
static curl_socket_t src_open(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct ks_transfer *t = ud;

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    !ks_netguard_allows(&t->guard, &a->addr, t->refused, sizeof(t->refused)))
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype, a->protocol);
}

static CURL *src_new(struct ks_transfer *t, const struct ks_transfer_opts *o)
{
	CURL *e = curl_easy_init();

	ks_require(e);
	curl_easy_setopt(e, CURLOPT_URL, o->src_url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRS);
	/* No proxy: the address checked is the one the data comes from. */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, src_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, src_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->src_err);
	if (o->max_bytes)
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	return e;
}

static void dst_tls(CURL *e, const struct ks_http_tls *tls)
{
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!tls)
		return;
	if (tls->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (tls->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert_file);
	if (tls->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key_file);
}

static CURL *dst_new(struct ks_transfer *t, const struct ks_transfer_opts *o)
{
	CURL *e = curl_easy_init();

	ks_require(e);
	for (const char *const *h = o->dst_headers; h && *h; h++)
		t->dst_hdrs = curl_slist_append(t->dst_hdrs, *h);
	t->dst_hdrs = curl_slist_append(t->dst_hdrs, "Expect:");
	t->dst_hdrs = curl_slist_append(t->dst_hdrs, "Transfer-Encoding: chunked");
	curl_easy_setopt(e, CURLOPT_URL, o->dst_url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	if (o->dst_method && strcmp(o->dst_method, "PUT") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->dst_method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->dst_hdrs);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, dst_read);
	curl_easy_setopt(e, CURLOPT_READDATA, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, dst_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->dst_err);
	dst_tls(e, o->dst_tls);
	return e;
}

static void common(CURL *e, const struct ks_transfer_opts *o)
{
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
}

struct ks_transfer *ks_transfer_start(uv_loop_t *loop, const struct ks_transfer_opts *o)
{
	struct ks_transfer *t = ks_xcalloc(1, sizeof(*t));

	ks_require(o->src_url && o->dst_url && o->on_done);
	t->on_done = o->on_done;
	t->data = o->data;
	t->max_bytes = o->max_bytes;
	t->t0 = ks_now_ns();
	if (o->guard)
		t->guard = *o->guard;
	if (o->sha256)
		snprintf(t->expect, sizeof(t->expect), "%s", o->sha256);
	t->buf = ks_xmalloc(BUF_CAP + (16u << 10) + CURL_MAX_WRITE_SIZE);
	ks_buf_init(&t->res.dst_body);
	ks_digest_init(&t->digest);
	t->src = src_new(t, o);
	t->dst = dst_new(t, o);
	common(t->src, o);
	common(t->dst, o);
	ks_curl_uv_init(&t->cu, loop, after_curl, closed);
	ks_require(curl_multi_add_handle(t->cu.multi, t->src) == CURLM_OK);
	return t;
}

void ks_transfer_cancel(struct ks_transfer *t)
{
	if (t->finished)
		return;
	t->finished = true;
	if (!t->busy)
		teardown(t);
}
