/* curl_uv.c: a libcurl multi handle driven by a libuv loop (curl_uv.h). */
#include "curl_uv.h"

#include <stdbool.h>
#include <stdlib.h>

#include "ks.h"

struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct ks_curl_uv *cu;
	struct ks_list link; /* in cu->socks */
};

static void on_closed(uv_handle_t *handle)
{
	struct ks_curl_uv *cu = handle->data;

	if (handle->type == UV_POLL)
		free(KS_CONTAINER_OF((uv_poll_t *)handle, struct sock, poll));
	if (--cu->open_handles == 0 && cu->closing)
		cu->closed(cu);
}

static void sock_close(struct sock *s)
{
	ks_list_del(&s->link);
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct sock *s = KS_CONTAINER_OF(poll, struct sock, poll);
	struct ks_curl_uv *cu = s->cu;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cu->multi, s->fd, flags, &running);
	cu->after(cu);
}

static void on_timer(uv_timer_t *t)
{
	struct ks_curl_uv *cu = t->data;
	int running;

	curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	cu->after(cu);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
	struct ks_curl_uv *cu = ud;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&cu->timer);
	else
		uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
	struct ks_curl_uv *cu = ud;
	struct sock *s = sockp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			sock_close(s);
			curl_multi_assign(cu->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = ks_xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->cu = cu;
		if (uv_poll_init_socket(cu->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = cu;
		cu->open_handles++;
		ks_list_add(&cu->socks, &s->link);
		curl_multi_assign(cu->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, on_poll);
	return 0;
}

void ks_curl_uv_init(struct ks_curl_uv *cu, uv_loop_t *loop, void (*after)(struct ks_curl_uv *),
		     void (*closed)(struct ks_curl_uv *))
{
	static bool global_done;

	if (!global_done) {
		ks_require(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
		global_done = true;
	}
	*cu = (struct ks_curl_uv){ .loop = loop, .after = after, .closed = closed };
	ks_list_init(&cu->socks);
	cu->multi = curl_multi_init();
	ks_require(cu->multi);
	uv_timer_init(loop, &cu->timer);
	cu->timer.data = cu;
	cu->open_handles = 1;
	curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
	curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
}

void ks_curl_uv_close(struct ks_curl_uv *cu)
{
	cu->closing = true;
	/* libcurl closes its connections without telling us; we close our polls. */
	curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, NULL);
	curl_multi_cleanup(cu->multi);
	cu->multi = NULL;
	while (!ks_list_empty(&cu->socks))
		sock_close(KS_CONTAINER_OF(ks_list_first(&cu->socks), struct sock, link));
	uv_timer_stop(&cu->timer);
	uv_close((uv_handle_t *)&cu->timer, on_closed);
}
