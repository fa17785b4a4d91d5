#pragma once
/*
 * https.h: a small HTTPS/1.1 server on the libuv loop for the API server's admission
 * calls: OpenSSL over memory BIOs (the TLS bytes go through uv streams, never a socket
 * OpenSSL owns), POST with a Content-Length body only (405 for other methods, 413 past
 * max_body, 400 for what does not parse), keep-alive. One handler answers every path,
 * synchronously, on the loop. The certificate can be changed while serving: connections
 * made after ks_https_set_cert() use the new one. With a client CA, only clients holding a
 * certificate it signed get past the handshake. Single-threaded, like the loop.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ks.h"

struct ks_https;

/*
 * Answer a POST of body (len bytes, NUL-terminated too) to path (NUL-terminated, the
 * query string cut): append the response body to out, set *ctype (a static string;
 * "application/json" already) and return the HTTP status.
 */
typedef int (*ks_https_fn)(void *data, const char *path, const char *body, size_t len,
			   struct ks_buf *out, const char **ctype);

struct ks_https_opts {
	size_t max_body;	  /* 0: 8 MiB */
	size_t max_conns;	  /* 0: 256 */
	unsigned idle_timeout_ms; /* 0: 60000 */
	/* PEM CA certificate(s): a client must present a certificate one of them signed, or
	 * the handshake fails and a warning names the peer and why; NULL: no client
	 * certificate asked for. Copied. */
	const char *client_ca_pem;
};

/* Whether pem holds at least one CA certificate usable as client_ca_pem; else *err. */
bool ks_https_ca_ok(const char *pem, char **err);
/*
 * Listen on addr ("127.0.0.1:8443", ":8443", port 0 picks one) with the PEM certificate
 * (chain) and key given. Returns 0 and sets *out, or -EINVAL with *err (free it) for a
 * bad address or certificate, or another -errno from the socket calls (*err set too).
 */
int ks_https_start(uv_loop_t *loop, const char *addr, const char *cert_pem, const char *key_pem,
		   const struct ks_https_opts *opts, ks_https_fn fn, void *data,
		   struct ks_https **out, char **err);
/* Serve new connections with this certificate and key. Returns 0, or -EINVAL with *err
 * (free it), the old certificate kept. */
int ks_https_set_cert(struct ks_https *s, const char *cert_pem, const char *key_pem, char **err);
int ks_https_port(const struct ks_https *s);
/* Stop listening and close every connection; freed once the loop has run the close
 * callbacks. No handler runs after this. */
void ks_https_stop(struct ks_https *s);
