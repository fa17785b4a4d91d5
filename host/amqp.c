/* amqp.c: an AMQP 0-9-1 consumer on a thread of its own, delivering on the loop (amqp.h). */
#include "amqp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "ks.h"

#define TIMEOUT_S 5	 /* connect, handshake and each RPC */
#define POLL_MS 200	 /* how often the consuming thread looks at the stop flag */
#define BACKOFF0_MS 1000 /* first wait before connecting again */

struct msg {
	struct msg *next;
	char *key;
	size_t len;
	char body[];
};

struct ks_amqp {
	uv_loop_t *loop;
	uv_async_t async;
	uv_thread_t thread;
	ks_amqp_cb cb;
	void *data;
	/* Read-only once started. */
	char *url; /* amqp_parse_url points into it */
	struct amqp_connection_info ci;
	char *exchange, *queue;
	char **keys;
	size_t max_pending, max_body;
	unsigned backoff_max_ms;
	/* Shared with the thread, under mu. */
	uv_mutex_t mu;
	struct msg *head, *tail;
	size_t npending;
	struct ks_amqp_stats st;
	bool stop;	  /* the loop asks the thread to end */
	bool thread_done; /* the thread ended (the loop may join it) */
	/* The loop's own. */
	bool stopping;
};

/* --- the thread ------------------------------------------------------------------ */

static void set_error(struct ks_amqp *a, const char *what, const char *why)
{
	uv_mutex_lock(&a->mu);
	a->st.connected = false;
	a->st.failures++;
	snprintf(a->st.last_error, sizeof(a->st.last_error), "%s: %s", what, why);
	uv_mutex_unlock(&a->mu);
}

static bool stopped(struct ks_amqp *a)
{
	bool s;

	uv_mutex_lock(&a->mu);
	s = a->stop;
	uv_mutex_unlock(&a->mu);
	return s;
}

/* Why r is not normal, as text (into buf). */
static const char *reply_error(amqp_rpc_reply_t r, char *buf, size_t cap)
{
	const amqp_connection_close_t *cc;
	const amqp_channel_close_t *ch;

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return "ok";
	case AMQP_RESPONSE_NONE:
		return "no reply";
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return amqp_error_string2(r.library_error);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			cc = r.reply.decoded;
			snprintf(buf, cap, "server closed the connection: %u %.*s", cc->reply_code,
				 (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			ch = r.reply.decoded;
			snprintf(buf, cap, "server closed the channel: %u %.*s", ch->reply_code,
				 (int)ch->reply_text.len, (const char *)ch->reply_text.bytes);
		} else {
			snprintf(buf, cap, "server error (method 0x%08x)", r.reply.id);
		}
		return buf;
	}
	return "unknown reply";
}

/* Whether the last RPC of conn went well; else records why (what failed). */
static bool rpc_ok(struct ks_amqp *a, amqp_connection_state_t conn, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	char buf[128];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	set_error(a, what, reply_error(r, buf, sizeof(buf)));
	return false;
}

/* Hand one message to the loop (or count it dropped). */
static void enqueue(struct ks_amqp *a, const amqp_envelope_t *env)
{
	size_t len = env->message.body.len, klen = env->routing_key.len;
	struct msg *m = NULL;

	if (len <= a->max_body) {
		m = ks_xmalloc(sizeof(*m) + len + klen + 2);
		m->next = NULL;
		m->len = len;
		memcpy(m->body, env->message.body.bytes, len);
		m->body[len] = '\0';
		m->key = m->body + len + 1;
		memcpy(m->key, env->routing_key.bytes, klen);
		m->key[klen] = '\0';
	}
	uv_mutex_lock(&a->mu);
	if (!m || a->npending >= a->max_pending) {
		a->st.dropped++;
		free(m);
		m = NULL;
	} else {
		if (a->tail)
			a->tail->next = m;
		else
			a->head = m;
		a->tail = m;
		a->npending++;
	}
	uv_mutex_unlock(&a->mu);
	if (m)
		uv_async_send(&a->async);
}

/* Declare and bind the queue, start consuming; the queue's name into *queue. */
static bool subscribe(struct ks_amqp *a, amqp_connection_state_t conn, amqp_bytes_t *queue)
{
	amqp_queue_declare_ok_t *q;
	bool named = a->queue != NULL;

	amqp_channel_open(conn, 1);
	if (!rpc_ok(a, conn, "channel.open"))
		return false;
	amqp_exchange_declare(conn, 1, amqp_cstring_bytes(a->exchange), amqp_cstring_bytes("topic"),
			      1, 0, 0, 0, amqp_empty_table);
	if (!rpc_ok(a, conn, "exchange (passive declare)"))
		return false;
	q = amqp_queue_declare(conn, 1, named ? amqp_cstring_bytes(a->queue) : amqp_empty_bytes, 0,
			       0, !named, !named, amqp_empty_table);
	if (!q || !rpc_ok(a, conn, "queue.declare"))
		return false;
	*queue = amqp_bytes_malloc_dup(q->queue);
	for (char **k = a->keys; *k; k++) {
		amqp_queue_bind(conn, 1, *queue, amqp_cstring_bytes(a->exchange),
				amqp_cstring_bytes(*k), amqp_empty_table);
		if (!rpc_ok(a, conn, "queue.bind"))
			return false;
	}
	amqp_basic_consume(conn, 1, *queue, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
	return rpc_ok(a, conn, "basic.consume");
}

/* Consume until an error or stop. */
static void consume(struct ks_amqp *a, amqp_connection_state_t conn)
{
	struct timeval tv = { 0, POLL_MS * 1000 };
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	char buf[128];

	uv_mutex_lock(&a->mu);
	a->st.connected = true;
	a->st.connects++;
	a->st.last_error[0] = '\0';
	uv_mutex_unlock(&a->mu);
	while (!stopped(a)) {
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			enqueue(a, &env);
			amqp_destroy_envelope(&env);
		} else if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
			   r.library_error != AMQP_STATUS_TIMEOUT) {
			set_error(a, "consume", reply_error(r, buf, sizeof(buf)));
			return;
		}
	}
}

/* One connection, from connect to close. */
static void session(struct ks_amqp *a)
{
	struct timeval tv = { TIMEOUT_S, 0 };
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	amqp_bytes_t queue = amqp_empty_bytes;
	amqp_rpc_reply_t r;
	char buf[128];
	int rc;

	ks_require(conn && sock);
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &tv);
	rc = amqp_socket_open_noblock(sock, a->ci.host, a->ci.port, &tv);
	if (rc != AMQP_STATUS_OK) {
		set_error(a, "connect", amqp_error_string2(rc));
		goto out_destroy;
	}
	r = amqp_login(conn, a->ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, a->ci.user,
		       a->ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		set_error(a, "login", reply_error(r, buf, sizeof(buf)));
		goto out_destroy;
	}
	if (subscribe(a, conn, &queue))
		consume(a, conn);
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
out_destroy:
	amqp_bytes_free(queue);
	amqp_destroy_connection(conn);
	uv_mutex_lock(&a->mu);
	a->st.connected = false;
	uv_mutex_unlock(&a->mu);
}

static void run(void *arg)
{
	struct ks_amqp *a = arg;
	unsigned backoff = BACKOFF0_MS;

	while (!stopped(a)) {
		uint64_t connects;

		uv_mutex_lock(&a->mu);
		connects = a->st.connects;
		uv_mutex_unlock(&a->mu);
		session(a);
		uv_mutex_lock(&a->mu);
		if (a->st.connects != connects)
			backoff = BACKOFF0_MS; /* it got as far as consuming */
		uv_mutex_unlock(&a->mu);
		for (unsigned t = 0; t < backoff && !stopped(a); t += POLL_MS)
			uv_sleep(POLL_MS);
		backoff = backoff * 2 > a->backoff_max_ms ? a->backoff_max_ms : backoff * 2;
	}
	uv_mutex_lock(&a->mu);
	a->thread_done = true;
	uv_mutex_unlock(&a->mu);
	uv_async_send(&a->async);
}

/* --- the loop -------------------------------------------------------------------- */

static void free_consumer(uv_handle_t *h)
{
	struct ks_amqp *a = h->data;
	struct msg *m, *next;

	for (m = a->head; m; m = next) {
		next = m->next;
		free(m);
	}
	for (char **k = a->keys; *k; k++)
		free(*k);
	free(a->keys);
	free(a->url);
	free(a->exchange);
	free(a->queue);
	uv_mutex_destroy(&a->mu);
	free(a);
}

static void on_async(uv_async_t *h)
{
	struct ks_amqp *a = h->data;
	struct msg *m, *next;
	bool done;

	uv_mutex_lock(&a->mu);
	m = a->head;
	a->head = a->tail = NULL;
	a->npending = 0;
	done = a->thread_done;
	uv_mutex_unlock(&a->mu);
	for (; m; m = next) {
		next = m->next;
		if (!a->stopping) {
			uv_mutex_lock(&a->mu);
			a->st.messages++;
			uv_mutex_unlock(&a->mu);
			a->cb(m->body, m->len, m->key, a->data); /* may call ks_amqp_stop */
		}
		free(m);
	}
	if (done && a->stopping) {
		uv_thread_join(&a->thread); /* it has ended: no wait */
		uv_close((uv_handle_t *)&a->async, free_consumer);
	}
}

struct ks_amqp *ks_amqp_start(uv_loop_t *loop, const struct ks_amqp_opts *o, ks_amqp_cb cb,
			      void *data, const char **err)
{
	struct ks_amqp *a;
	size_t n = 0;

	*err = NULL;
	if (!o->exchange || !o->exchange[0])
		*err = "no exchange";
	else if (!o->keys || !o->keys[0])
		*err = "no routing keys";
	if (*err)
		return NULL;
	a = ks_xcalloc(1, sizeof(*a));
	a->url = ks_xstrdup(o->url ? o->url : "amqp://");
	amqp_default_connection_info(&a->ci);
	if (amqp_parse_url(a->url, &a->ci) != AMQP_STATUS_OK || a->ci.ssl) {
		*err = a->ci.ssl ? "amqps:// is not supported"
				 : "not an AMQP URL (amqp://user:password@host:port/vhost)";
		free(a->url);
		free(a);
		return NULL;
	}
	if (!a->ci.vhost[0])
		a->ci.vhost = "/"; /* amqp://host:port/ names the default vhost, as oslo.messaging
				      reads it */
	a->loop = loop;
	a->cb = cb;
	a->data = data;
	a->exchange = ks_xstrdup(o->exchange);
	a->queue = o->queue ? ks_xstrdup(o->queue) : NULL;
	while (o->keys[n])
		n++;
	a->keys = ks_xcalloc(n + 1, sizeof(*a->keys));
	for (size_t i = 0; i < n; i++)
		a->keys[i] = ks_xstrdup(o->keys[i]);
	a->max_pending = o->max_pending ? o->max_pending : 1024;
	a->max_body = o->max_body ? o->max_body : 1u << 20;
	a->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	ks_require(uv_mutex_init(&a->mu) == 0);
	ks_require(uv_async_init(loop, &a->async, on_async) == 0);
	a->async.data = a;
	ks_require(uv_thread_create(&a->thread, run, a) == 0);
	return a;
}

void ks_amqp_stats(struct ks_amqp *a, struct ks_amqp_stats *out)
{
	uv_mutex_lock(&a->mu);
	*out = a->st;
	uv_mutex_unlock(&a->mu);
}

void ks_amqp_stop(struct ks_amqp *a)
{
	if (!a || a->stopping)
		return;
	a->stopping = true;
	uv_mutex_lock(&a->mu);
	a->stop = true;
	uv_mutex_unlock(&a->mu);
	uv_async_send(&a->async); /* in case the thread has already ended */
}
