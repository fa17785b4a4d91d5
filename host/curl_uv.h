#pragma once
/*
 * curl_uv.h: a libcurl multi handle driven by a libuv loop. libcurl's sockets are watched
 * with uv_poll and its timeout with a uv_timer (curl_multi_socket_action); after each
 * round the owner's `after` runs, to read curl_multi_info_read. The HTTP client (http.c)
 * and the streamed transfer (transfer.c) each embed one and find themselves from it with
 * KS_CONTAINER_OF.
 *
 *   ks_curl_uv_init(&h->cu, loop, after_round, freed);
 *   curl_multi_add_handle(h->cu.multi, easy);
 *   ...
 *   ks_curl_uv_close(&h->cu);   (easy handles removed first)  ->  freed(&h->cu)
 */
#include <stdbool.h>

#include <curl/curl.h>
#include <uv.h>

#include "list.h"

struct ks_curl_uv {
	CURLM *multi;
	uv_loop_t *loop;
	uv_timer_t timer;
	struct ks_list socks; /* one watched socket each, private */
	int open_handles;
	bool closing;
	void (*after)(struct ks_curl_uv *cu);  /* after each round of libcurl */
	void (*closed)(struct ks_curl_uv *cu); /* once closed: the owner may free itself */
};

/* A new multi handle on loop (libcurl's global init is done on first use). */
void ks_curl_uv_init(struct ks_curl_uv *cu, uv_loop_t *loop, void (*after)(struct ks_curl_uv *),
		     void (*closed)(struct ks_curl_uv *));
/* Clean the multi handle up (remove its easy handles first) and close the polls and the
 * timer; closed runs once the last is closed, from the loop. */
void ks_curl_uv_close(struct ks_curl_uv *cu);
