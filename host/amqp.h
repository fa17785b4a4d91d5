#pragma once
/*
 * amqp.h: a consumer of AMQP 0-9-1 messages (RabbitMQ), for what a cloud publishes on its
 * message bus (Nova's versioned notifications, say). Knows nothing of Nova or of Lua.
 *
 * rabbitmq-c (Debian's librabbitmq) is a blocking library, so each consumer keeps its
 * connection on a thread of its own, as a blocking library must be used beside an event
 * loop: the thread connects (TCP, SASL PLAIN; a 5 s timeout on the connect, the handshake
 * and every RPC), checks that the exchange exists (a passive declare: the cloud declares
 * it, and a declare with other flags would fail), declares an exclusive auto-delete
 * queue of its own (or binds the named one), binds it to each routing key, and consumes
 * with automatic acknowledgement (a notification lost while we are down is made up for by
 * polling, as the operator's plugins do anyway). Each message's body is handed to the loop
 * through a uv_async_t, where the callback runs; nothing else crosses threads. On any
 * error (broker down, exchange missing, connection reset) the thread closes the
 * connection and tries again after a backoff of 1 s doubling to 30 s. Nothing blocks the
 * loop, stopping included.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct ks_amqp;

struct ks_amqp_opts {
	const char *url;	 /* amqp://user:password@host:port/vhost (rabbitmq-c's form) */
	const char *exchange;	 /* e.g. "nova"; required */
	const char *const *keys; /* routing keys to bind, NULL-terminated; required */
	const char *queue;	 /* NULL: a server-named exclusive auto-delete queue */
	size_t max_pending;	 /* messages waiting for the loop; 0: 1024; beyond: dropped */
	size_t max_body;	 /* bytes; 0: 1 MiB; a larger message is dropped */
	unsigned backoff_max_ms; /* 0: 30000 */
};

/* A message: body (not NUL-terminated) and the routing key it came with. Called on the
 * loop; body and key are valid during the call only. */
typedef void (*ks_amqp_cb)(const char *body, size_t len, const char *key, void *data);

struct ks_amqp_stats {
	bool connected;	   /* consuming now */
	uint64_t connects; /* connections that reached consuming */
	uint64_t failures; /* attempts or connections that failed */
	uint64_t messages; /* delivered to the callback */
	uint64_t dropped;  /* too large, or past max_pending */
	char last_error[160];
};

/*
 * Start consuming (everything in o is copied). Returns the consumer, or NULL with *err
 * (static text) when o is unusable: no exchange or keys, a URL rabbitmq-c cannot parse.
 * Connection errors are not errors here: they are retried, and seen in the stats.
 */
struct ks_amqp *ks_amqp_start(uv_loop_t *loop, const struct ks_amqp_opts *o, ks_amqp_cb cb,
			      void *data, const char **err);

/* The consumer's state now (read on the loop). */
void ks_amqp_stats(struct ks_amqp *a, struct ks_amqp_stats *out);

/*
 * Stop: the callback is not called again, and a is freed from the loop once its thread
 * has closed the connection (within about the 5 s timeout). Does not block.
 */
void ks_amqp_stop(struct ks_amqp *a);
