/*
 * fake.c: what the fakes of fake.h share: replies, and answers deferred to the loop.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ks.h"
#include "lua/engine.h"
#include "lua/fake.h"

struct deferred {
	struct ks_lua_op op;
	uv_timer_t timer;
	ks_lua_push_cb push;
	void (*drop)(void *data);
	void *data;
};

void ks_lua_fake_reply_deinit(struct ks_lua_fake_reply *r)
{
	free(r->reason);
	free(r->message);
	free(r->headers);
	free(r->body);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof(*r));
}

void ks_lua_fake_reply_fail(struct ks_lua_fake_reply *r, const char *reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r->status = 0;
	free(r->reason);
	free(r->message);
	r->reason = ks_xstrdup(reason);
	r->message = ks_xvasprintf(fmt, ap);
	va_end(ap);
}

static void closed(uv_handle_t *h)
{
	free(h->data);
}

static void drop(struct deferred *d)
{
	if (d->drop)
		d->drop(d->data);
	d->drop = NULL;
	uv_close((uv_handle_t *)&d->timer, closed);
}

static void fire(uv_timer_t *t)
{
	struct deferred *d = t->data;
	int n = d->push(ks_lua_op_thread(&d->op), d->data);

	/* Resuming may run the task to its end; d is ours until drop. */
	ks_lua_op_resume(&d->op, n);
	drop(d);
}

static void cancel(struct ks_lua_op *op)
{
	struct deferred *d = KS_CONTAINER_OF(op, struct deferred, op);

	uv_timer_stop(&d->timer);
	drop(d);
}

int ks_lua_defer(lua_State *L, ks_lua_push_cb push, void (*drop_cb)(void *data), void *data)
{
	struct deferred *d = ks_xcalloc(1, sizeof(*d));

	d->op.cancel = cancel;
	d->push = push;
	d->drop = drop_cb;
	d->data = data;
	uv_timer_init(ks_lua_host(ks_lua_from(L))->loop, &d->timer);
	d->timer.data = d;
	uv_timer_start(&d->timer, fire, 0, 0);
	return ks_lua_op_start(L, &d->op);
}
