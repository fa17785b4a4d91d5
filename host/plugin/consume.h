#pragma once
/*
 * consume.h: what a plugin consumes from the cloud's message bus, declared as it
 * declares 'watches':
 *
 *   consumes = { { exchange = "nova", topic = "versioned_notifications.info",
 *                  map = function(msg) return { "ns/name", ... } end } }
 *
 * The host subscribes (host/amqp.h: a queue of its own, bound to the topic) with the
 * connection URL of its configuration (--amqp-url-file), never the plugin's; each message
 * body (decoded JSON, or the raw text when it is not JSON) goes to map, in a task that
 * may not wait for I/O (kube.get/list read the cache), and the keys it returns are
 * enqueued on the plugin's controller. At most KS_PLUGIN_MAX_CONSUMES entries a plugin:
 * a plugin cannot make the host open unbounded queues. Each consumer's state is in
 * /metrics (kupenstack_amqp_*{plugin,exchange,topic}) and the readiness check.
 */
#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include "controller.h"
#include "metrics.h"

#define KS_PLUGIN_MAX_CONSUMES 4

struct ks_plugin;

struct ks_plugin_consume {
	char *exchange, *topic;
	int map_ref; /* registry ref of map(msg) */
};

/* Read field 'consumes' of the plugin table at t into p. Returns false with *err (free
 * it) naming the field. */
bool ks_plugin_get_consumes(lua_State *L, int t, struct ks_plugin *p, char **err);
void ks_plugin_consumes_free(struct ks_plugin *p, lua_State *L);
bool ks_plugin_same_consumes(const struct ks_plugin *a, const struct ks_plugin *b);

/* The running consumers of one plugin binding. */
struct ks_consumers;

/*
 * Start a consumer for each of (*slot)'s consumes (the slot: the current version, so a
 * reload's map takes effect), enqueueing on c. url NULL: none is started (a log line says
 * so once; polling is the plugin's fallback). Returns NULL when there is nothing to run.
 */
struct ks_consumers *ks_consumers_start(uv_loop_t *loop, const char *url, struct ks_plugin **slot,
					struct ks_controller *c, struct ks_metrics *m);
/* Stop them (their threads close from the loop); NULL is fine. */
void ks_consumers_stop(struct ks_consumers *cs);
/* Are they all connected, or have they at least never failed? False with why when one
 * is down after a failure. NULL: true. */
bool ks_consumers_ready(const struct ks_consumers *cs, char *why, size_t cap);
