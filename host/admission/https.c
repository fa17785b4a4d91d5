/* https.c: HTTPS for admission webhooks: OpenSSL memory BIOs over libuv streams. */
#include "admission/https.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "listen.h"
#include "log.h"
#include "serve.h"

#define MAX_HEAD 16384

struct conn {
	struct ks_listen_conn lc; /* first: the listener allocates and frees the conn */
	struct ks_https *srv;
	SSL *ssl;
	BIO *rbio, *wbio; /* network -> SSL, SSL -> network */
	struct ks_buf in; /* decrypted request bytes */
};

struct wreq {
	uv_write_t req;
	char data[];
};

struct ks_https {
	struct ks_listen ln;
	SSL_CTX *ctx;
	struct ks_https_opts o;
	ks_https_fn fn;
	void *data;
	char *client_ca; /* PEM, or NULL */
};

static char *ssl_error(const char *what)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	ERR_clear_error();
	return ks_xasprintf("%s: %s", what, buf);
}

/* The listener has closed everything: free the server. */
static void closed(struct ks_listen *ln)
{
	struct ks_https *s = ln->data;

	SSL_CTX_free(s->ctx);
	free(s->client_ca);
	free(s);
}

static void conn_closed(struct ks_listen_conn *lc)
{
	struct conn *c = KS_CONTAINER_OF(lc, struct conn, lc);

	SSL_free(c->ssl); /* frees both BIOs */
	ks_buf_deinit(&c->in);
}

static void conn_close(struct conn *c)
{
	ks_listen_close(&c->lc);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	free(KS_CONTAINER_OF(req, struct wreq, req));
	if (status < 0)
		conn_close(c);
}

/* Send what OpenSSL has written to the network BIO. */
static void flush(struct conn *c)
{
	size_t n = (size_t)BIO_ctrl_pending(c->wbio);
	struct wreq *w;
	uv_buf_t b;

	if (!n || c->lc.closing)
		return;
	w = ks_xmalloc(sizeof(*w) + n);
	BIO_read(c->wbio, w->data, (int)n);
	w->req.data = c;
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->lc.tcp, &b, 1, on_write) < 0) {
		free(w);
		conn_close(c);
	}
}

static void respond(struct conn *c, int status, const char *ctype, const struct ks_buf *body,
		    bool close)
{
	struct ks_buf head;

	ks_buf_init(&head);
	ks_buf_printf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
		      status, ks_serve_reason(status), ctype, body->len,
		      close ? "Connection: close\r\n" : "");
	if (body->len)
		ks_buf_append(&head, body->data, body->len);
	SSL_write(c->ssl, head.data, (int)head.len); /* memory BIO: never partial */
	ks_buf_deinit(&head);
	flush(c);
	if (close)
		conn_close(c);
}

static void fail(struct conn *c, int status)
{
	struct ks_buf b;

	ks_buf_init(&b);
	ks_buf_printf(&b, "%s\n", ks_serve_reason(status));
	respond(c, status, "text/plain; charset=utf-8", &b, true);
	ks_buf_deinit(&b);
}

/* The value of header name in head[0..n), or NULL; *len its length. */
static const char *header(const char *head, size_t n, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + n, *eol;

	while (p < end && (eol = memchr(p, '\n', (size_t)(end - p)))) {
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (p < eol && (*p == ' ' || *p == '\t'))
				p++;
			*len = (size_t)(eol - p);
			while (*len && (p[*len - 1] == '\r' || p[*len - 1] == ' '))
				(*len)--;
			return p;
		}
		p = eol + 1;
	}
	return NULL;
}

/* Handle the request at the start of c->in if it is complete: 1 (handled, go on), 0
 * (wait for more) or -1 (the connection is done). */
static int process_one(struct conn *c)
{
	struct ks_https *s = c->srv;
	const char *end = c->in.len ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
	const char *cl, *ctype = "application/json", *sp, *sp2, *q;
	size_t hlen, cllen = 0, blen = 0;
	struct ks_buf out;
	char path[512], *body;
	int status;
	bool close;

	if (!end)
		return c->in.len > MAX_HEAD ? (fail(c, 400), -1) : 0;
	hlen = (size_t)(end - c->in.data) + 4;
	cl = header(c->in.data, hlen, "content-length", &cllen);
	if (cl) {
		char num[24] = "";

		memcpy(num, cl, KS_MIN(cllen, sizeof(num) - 1));
		blen = strtoul(num, NULL, 10);
	}
	if (blen > s->o.max_body)
		return fail(c, 413), -1;
	if (c->in.len < hlen + blen)
		return 0;
	sp = memchr(c->in.data, ' ', hlen);
	sp2 = sp ? memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - c->in.data)) : NULL;
	if (!sp || !sp2 || (size_t)(sp2 - sp - 1) >= sizeof(path))
		return fail(c, 400), -1;
	if (header(c->in.data, hlen, "transfer-encoding", &cllen))
		return fail(c, 400), -1;
	memcpy(path, sp + 1, (size_t)(sp2 - sp - 1));
	path[sp2 - sp - 1] = '\0';
	q = strchr(path, '?');
	if (q)
		path[q - path] = '\0';
	close = header(c->in.data, hlen, "connection", &cllen) &&
		strncasecmp(header(c->in.data, hlen, "connection", &cllen), "close", 5) == 0;
	ks_buf_init(&out);
	if ((size_t)(sp - c->in.data) != 4 || memcmp(c->in.data, "POST", 4) != 0) {
		status = 405;
		ctype = "text/plain; charset=utf-8";
		ks_buf_puts(&out, "only POST\n");
	} else {
		body = ks_xstrndup(c->in.data + hlen, blen);
		status = s->fn(s->data, path, body, blen, &out, &ctype);
		free(body);
	}
	respond(c, status, ctype, &out, close);
	ks_buf_deinit(&out);
	ks_buf_consume(&c->in, hlen + blen);
	return close ? -1 : 1;
}

/* The handshake failed: say who and why (a client without the certificate asked for is
 * refused here), then clear OpenSSL's error queue. */
static void refused(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char peer[64] = "?", why[256] = "the connection closed";
	long v = SSL_get_verify_result(c->ssl);
	unsigned long e = ERR_peek_last_error();

	if (uv_tcp_getpeername(&c->lc.tcp, (struct sockaddr *)&ss, &len) == 0)
		uv_ip_name((struct sockaddr *)&ss, peer, sizeof(peer));
	if (v != X509_V_OK)
		snprintf(why, sizeof(why), "client certificate: %s",
			 X509_verify_cert_error_string(v));
	else if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	ks_warn("admission: TLS handshake refused", "peer=%s client_ca=%s reason=%s", peer,
		c->srv->client_ca ? "required" : "none", why);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	char plain[16384];
	int n;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->lc.closing)
		return;
	BIO_write(c->rbio, buf->base, (int)nread);
	if (!SSL_is_init_finished(c->ssl)) {
		n = SSL_do_handshake(c->ssl);
		flush(c);
		if (n <= 0 && SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ) {
			refused(c);
			conn_close(c);
			return;
		}
	}
	while ((n = SSL_read(c->ssl, plain, sizeof(plain))) > 0)
		ks_buf_append(&c->in, plain, (size_t)n);
	if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		flush(c);
		conn_close(c);
		return;
	}
	flush(c); /* session tickets, alerts */
	ks_listen_touch(&c->lc);
	while (!c->lc.closing && process_one(c) > 0)
		;
}

static void accepted(struct ks_listen_conn *lc)
{
	struct conn *c = KS_CONTAINER_OF(lc, struct conn, lc);

	c->srv = lc->ln->data;
	c->ssl = SSL_new(c->srv->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	ks_require(c->ssl && c->rbio && c->wbio);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_accept_state(c->ssl);
}

static const struct ks_listen_ops ops = {
	.conn_size = sizeof(struct conn),
	.accepted = accepted,
	.on_read = on_read,
	.conn_closed = conn_closed,
	.closed = closed,
};

/* Trust the CA certificates of pem for clients, ask every client for a certificate and
 * refuse the handshake without one they signed. Returns how many were added. */
static int add_client_cas(SSL_CTX *ctx, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int n = 0;

	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (X509_check_ca(x) >= 1 &&
		    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1 &&
		    SSL_CTX_add_client_CA(ctx, x) == 1)
			n++;
		X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the PEM text */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return n;
}

bool ks_https_ca_ok(const char *pem, char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	bool ok = ctx && add_client_cas(ctx, pem) > 0;

	SSL_CTX_free(ctx);
	if (!ok)
		*err = ks_xstrdup("no CA certificate (PEM, basicConstraints CA:TRUE) in it");
	return ok;
}

static SSL_CTX *make_ctx(const char *cert_pem, const char *key_pem, const char *client_ca,
			 char **err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;

	if (!ctx || !x || !k || SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		*err = ssl_error("bad certificate or key");
		SSL_CTX_free(ctx);
		ctx = NULL;
	} else if (client_ca && add_client_cas(ctx, client_ca) == 0) {
		*err = ks_xstrdup("bad client CA: no CA certificate in it");
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return ctx;
}

int ks_https_set_cert(struct ks_https *s, const char *cert_pem, const char *key_pem, char **err)
{
	SSL_CTX *ctx = make_ctx(cert_pem, key_pem, s->client_ca, err);

	if (!ctx)
		return -EINVAL;
	SSL_CTX_free(s->ctx); /* connections hold their own reference */
	s->ctx = ctx;
	return 0;
}

int ks_https_start(uv_loop_t *loop, const char *addr, const char *cert_pem, const char *key_pem,
		   const struct ks_https_opts *opts, ks_https_fn fn, void *data,
		   struct ks_https **out, char **err)
{
	struct ks_https *s = ks_xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	int rc;

	if (opts)
		s->o = *opts;
	s->o.max_body = s->o.max_body ? s->o.max_body : 8u << 20;
	s->o.max_conns = s->o.max_conns ? s->o.max_conns : 256;
	s->o.idle_timeout_ms = s->o.idle_timeout_ms ? s->o.idle_timeout_ms : 60000;
	s->fn = fn;
	s->data = data;
	s->client_ca = s->o.client_ca_pem ? ks_xstrdup(s->o.client_ca_pem) : NULL;
	s->o.client_ca_pem = NULL;
	s->ctx = make_ctx(cert_pem, key_pem, s->client_ca, err);
	if (!s->ctx) {
		free(s->client_ca);
		free(s);
		return -EINVAL;
	}
	if (ks_listen_parse_addr(addr, &ss) != 0) {
		*err = ks_xasprintf("bad address %s (HOST:PORT)", addr);
		SSL_CTX_free(s->ctx);
		free(s->client_ca);
		free(s);
		return -EINVAL;
	}
	rc = ks_listen_start(&s->ln, loop, addr, &ops, s, s->o.max_conns, s->o.idle_timeout_ms);
	if (rc) {
		*err = ks_xasprintf("cannot listen on %s: %s", addr, uv_strerror(rc));
		return rc; /* s is freed by closed() */
	}
	*out = s;
	return 0;
}

int ks_https_port(const struct ks_https *s)
{
	return s->ln.port;
}

void ks_https_stop(struct ks_https *s)
{
	ks_listen_stop(&s->ln);
}
