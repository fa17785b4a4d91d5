#pragma once
/*
 * transfer.h: stream the body of a GET of one URL into a PUT (or POST) of another,
 * without holding it: at most 1 MiB is in flight between the two (the source is paused
 * while the destination is behind, and the other way round). Its SHA-256 and MD5 are
 * computed (host/digest.h) as the bytes pass, its size is capped, and every connection the
 * source side opens, the redirects' included, is checked against a netguard.h allow-list
 * (on the address really connected to, so DNS tricks gain nothing). Used to put a
 * tenant's image URL into Glance.
 *
 * libcurl drives both sides from one multi handle on the libuv loop, as host/http.c does
 * (curl's docs/examples/multi-uv.c). The destination request starts when the first byte
 * of a 2xx source body arrives, so a source that fails at once never opens it. The end
 * of the body (the last chunk) is only sent once the source is complete and, when a
 * SHA-256 is expected, matches it: otherwise the destination connection is dropped
 * mid-body, and the destination never sees a complete upload.
 */
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "http.h"
#include "ks.h"
#include "netguard.h"

struct ks_transfer;

struct ks_transfer_result {
	/*
	 * 0 when both sides completed (dst_status may still be a non-2xx answer); else
	 * -EACCES (the source's address is refused: errmsg says which and why), -EFBIG
	 * (over max_bytes), -EBADMSG (the data's SHA-256 is not the expected one),
	 * -EREMOTEIO (the source answered a non-2xx status), -ETIMEDOUT, -ECONNREFUSED,
	 * -EHOSTUNREACH, -ECONNRESET, -EPROTO (TLS), -EIO.
	 */
	int err;
	/* "source" or "destination": the side that failed; NULL when err == 0. */
	const char *side;
	/* One line saying what failed; "" when err == 0. */
	const char *errmsg;
	long src_status; /* the source's final status, 0 when it did not answer */
	long dst_status; /* the destination's status, 0 when it did not answer */
	uint64_t bytes;	 /* body bytes read from the source */
	char sha256[65]; /* hex digests of those bytes, complete or not */
	char md5[33];
	/* The destination's response body (the first 64 KiB). */
	struct ks_buf dst_body;
	double elapsed; /* seconds */
};

/* Called once, from the loop; res and what it points to are gone after it returns. */
typedef void (*ks_transfer_done_cb)(struct ks_transfer *t, const struct ks_transfer_result *res,
				    void *data);

struct ks_transfer_opts {
	const char *src_url; /* http(s) */
	const char *dst_url;
	const char *dst_method; /* "PUT" if NULL */
	/* NULL-terminated "Name: value" strings for the destination, or NULL. Copied. */
	const char *const *dst_headers;
	/* TLS for the destination (NULL: the system's trust store); the source always uses
	 * the system's. Copied. */
	const struct ks_http_tls *dst_tls;
	/* The source's allowed extra networks; NULL: only public addresses. Copied. */
	const struct ks_netguard *guard;
	uint64_t max_bytes; /* 0: no limit */
	const char *sha256; /* expected hex digest (any case), or NULL */
	long timeout_ms;    /* per side, whole request; 0: none */
	ks_transfer_done_cb on_done;
	void *data;
};

/*
 * Start a transfer on loop. Never NULL (aborts when libcurl cannot start); on_done fires
 * exactly once unless ks_transfer_cancel() is called first. The transfer frees itself
 * after on_done returns (its handles close on the loop).
 */
struct ks_transfer *ks_transfer_start(uv_loop_t *loop, const struct ks_transfer_opts *o);
/* Abandon a transfer: both connections are dropped and on_done does not fire. Not from
 * inside its own on_done. */
void ks_transfer_cancel(struct ks_transfer *t);
