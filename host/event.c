/* event.c: the Events recorder: a spam filter, dedup into patches, an async send queue. */
#include "event.h"
#include "event_object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "list.h"
#include "log.h"
#include "map.h"

#define MAX_PENDING 1000 /* Events queued or in flight */
#define MAX_INFLIGHT 4	 /* requests at once: Events must not crowd out reconciles */
#define MAX_ENTRIES 4096 /* dedup entries */
#define MAX_BUCKETS 4096 /* token buckets */
#define MAX_MESSAGE 1024
#define MAX_TRIES 3 /* for transport errors, 429 and 5xx */
#define NS_PER_S 1000000000.0

static const struct ks_kube_res events_res = { "", "v1", "events", true };

enum state {
	IDLE,
	QUEUED,
	SENDING,
};

/* One distinct event (object, type, reason, message) and the Event that counts it. */
struct entry {
	struct ks_events *e;
	struct ks_list lru; /* in e->lru, most recent first, while in_map */
	struct ks_list q;   /* in e->queue or e->sending unless IDLE */
	enum state state;
	bool in_map;  /* else freed as soon as IDLE */
	bool created; /* the server has the Event: repeats are patches */
	char hkey[17];
	cJSON *ev;		   /* the Event, count and lastTimestamp kept current */
	struct ks_kube_call *call; /* while SENDING */
	unsigned long count;	   /* occurrences so far */
	unsigned long sent;	   /* counted by the server */
	unsigned long sending;	   /* the count of the request in flight */
	uint64_t last_ns;	   /* monotonic time of the last occurrence */
	uint64_t not_before;	   /* no retry before */
	int tries;
};

/* The spam filter's token bucket for one involved object. */
struct bucket {
	struct ks_list lru;
	double tokens;
	uint64_t last_ns;
	char key[];
};

struct ks_events {
	uv_timer_t timer; /* runs the sender on the loop */
	struct ks_kube *kube;
	char *component, *host;
	unsigned burst;
	double refill, window;
	struct ks_map *entries; /* hkey (FNV-1a of the dedup key, checked) -> entry */
	struct ks_map *buckets; /* object key -> bucket */
	struct ks_list lru, blru, queue, sending;
	unsigned pending; /* queued or sending */
	unsigned inflight;
	uint64_t seq;
	struct ks_events_stats st;
};

/* The spam filter: false when obj's bucket is dry. */
static bool take_token(struct ks_events *e, const char *okey, uint64_t now)
{
	struct bucket *b = ks_map_get(e->buckets, okey);

	if (!b) {
		b = ks_xmalloc(sizeof(*b) + strlen(okey) + 1);
		strcpy(b->key, okey);
		b->tokens = e->burst;
		ks_map_put(e->buckets, okey, b);
	} else {
		b->tokens += (double)(now - b->last_ns) / NS_PER_S / e->refill;
		b->tokens = KS_MIN(b->tokens, (double)e->burst);
		ks_list_del(&b->lru);
	}
	b->last_ns = now;
	ks_list_add(&e->blru, &b->lru);
	while (ks_map_len(e->buckets) > MAX_BUCKETS) {
		struct bucket *old = KS_CONTAINER_OF(e->blru.prev, struct bucket, lru);

		ks_list_del(&old->lru);
		ks_map_del(e->buckets, old->key);
		free(old);
	}
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

/* Take en out of the dedup map: the next identical event makes a new Event. */
static void forget(struct entry *en)
{
	if (!en->in_map)
		return;
	ks_map_del(en->e->entries, en->hkey);
	ks_list_del(&en->lru);
	en->in_map = false;
}

/* Free en if nothing holds it any more. */
static void settle(struct entry *en)
{
	if (en->state != IDLE || en->in_map)
		return;
	cJSON_Delete(en->ev);
	free(en);
}

static void on_timer(uv_timer_t *t);

static void kick(struct ks_events *e)
{
	uv_timer_start(&e->timer, on_timer, 0, 0);
}

/* Queue en to be sent after delay_ms; false (and nothing done) at the pending cap. */
static bool enqueue(struct entry *en, uint64_t delay_ms)
{
	struct ks_events *e = en->e;

	if (e->pending >= MAX_PENDING)
		return false;
	e->pending++;
	en->state = QUEUED;
	en->not_before = ks_now_ns() + delay_ms * 1000000u;
	ks_list_add(e->queue.prev, &en->q);
	kick(e);
	return true;
}

static bool transient(const struct ks_kube_result *res)
{
	return res->code == 0 || res->code == 429 || res->code >= 500;
}

static void failed(struct entry *en, const struct ks_kube_result *res)
{
	en->e->st.failed++;
	ks_warn("could not record event", "op=%s namespace=%s event=%s reason=%s code=%ld error=%s",
		en->created ? "patch" : "create", ks_json_str(en->ev, "metadata.namespace"),
		ks_json_str(en->ev, "metadata.name"), ks_logq(ks_json_str(en->ev, "reason")),
		res->code, ks_logq(res->message));
}

/* A create or patch finished: count it, retry, re-create, or send what came since. */
static void on_sent(struct ks_kube_result *res, void *data)
{
	struct entry *en = data;
	struct ks_events *e = en->e;

	ks_list_del(&en->q);
	en->call = NULL;
	en->state = IDLE;
	e->inflight--;
	e->pending--;
	if (ks_kube_ok(res)) {
		if (en->created)
			e->st.patched++;
		else
			e->st.created++;
		en->created = true;
		en->sent = en->sending;
		en->tries = 0;
	} else if (en->created && res->code == 404) {
		/* Expired (the apiserver's --event-ttl): the same Event again. */
		ks_debug("event expired, creating it anew", "event=%s",
			 ks_json_str(en->ev, "metadata.name"));
		en->created = false;
		en->tries = 0;
		ks_event_name(en->ev, ks_json_str(en->ev, "involvedObject.name"), ++e->seq, e);
		enqueue(en, 0);
	} else if (transient(res) && ++en->tries < MAX_TRIES) {
		enqueue(en, 1000u << (en->tries - 1));
	} else {
		failed(en, res);
		en->tries = 0;
		en->sent = en->sending;
		if (!en->created)
			forget(en);
	}
	if (en->state == IDLE && en->in_map && en->count > en->sent)
		enqueue(en, 0);
	settle(en);
	if (!ks_list_empty(&e->queue))
		kick(e);
}

static void send_entry(struct entry *en)
{
	struct ks_events *e = en->e;
	const char *ns = ks_json_str(en->ev, "metadata.namespace");
	const char *name = ks_json_str(en->ev, "metadata.name");
	cJSON *patch = NULL;
	char *path, *body;

	ks_list_del(&en->q);
	ks_list_add(e->sending.prev, &en->q);
	en->state = SENDING;
	e->inflight++;
	en->sending = en->count;
	cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(en->ev, "count"), (double)en->count);
	if (en->created) {
		patch = cJSON_CreateObject();
		cJSON_AddNumberToObject(patch, "count", (double)en->count);
		cJSON_AddStringToObject(patch, "lastTimestamp",
					ks_json_str(en->ev, "lastTimestamp"));
	}
	path = ks_kube_path(&events_res, ns, en->created ? name : NULL, NULL);
	body = ks_json_print(patch ? patch : en->ev);
	en->call = ks_kube_request(e->kube, en->created ? "PATCH" : "POST", path,
				   en->created ? "application/strategic-merge-patch+json"
					       : "application/json",
				   body, on_sent, en);
	free(body);
	free(path);
	cJSON_Delete(patch);
}

/* Send what is due, up to MAX_INFLIGHT; wake up again for the first retry. */
static void on_timer(uv_timer_t *t)
{
	struct ks_events *e = t->data;
	uint64_t now = ks_now_ns(), next = 0;
	struct ks_list *l, *nx;

	for (l = e->queue.next; l != &e->queue && e->inflight < MAX_INFLIGHT; l = nx) {
		struct entry *en = KS_CONTAINER_OF(l, struct entry, q);

		nx = l->next;
		if (en->not_before <= now)
			send_entry(en);
		else if (!next || en->not_before < next)
			next = en->not_before;
	}
	if (next)
		uv_timer_start(&e->timer, on_timer, (next - now) / 1000000u + 1, 0);
}

/* Forget the least recently seen entries past the window or beyond MAX_ENTRIES. */
static void prune(struct ks_events *e, uint64_t now)
{
	uint64_t window = (uint64_t)(e->window * NS_PER_S);

	while (!ks_list_empty(&e->lru)) {
		struct entry *old = KS_CONTAINER_OF(e->lru.prev, struct entry, lru);

		if (ks_map_len(e->entries) <= MAX_ENTRIES && now - old->last_ns <= window)
			break;
		forget(old);
		settle(old);
	}
}

static void drop(struct ks_events *e, const char *why, const cJSON *obj, const char *reason)
{
	e->st.dropped++;
	ks_debug("event dropped", "why=%s object=%s reason=%s", why,
		 ks_logq(ks_json_str(obj, "metadata.name")), ks_logq(reason));
}

/* Equal, an absent string being as an empty one (ks_event_object() leaves those out). */
static bool same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool same_event(const cJSON *ev, const cJSON *obj, const char *type, const char *reason,
		       const char *msg)
{
	return same_str(ks_json_str(ev, "message"), msg) &&
	       same_str(ks_json_str(ev, "reason"), reason) &&
	       same_str(ks_json_str(ev, "type"), type) &&
	       same_str(ks_json_str(ev, "involvedObject.uid"), ks_json_str(obj, "metadata.uid")) &&
	       same_str(ks_json_str(ev, "involvedObject.name"), ks_json_str(obj, "metadata.name"));
}

static void record(struct ks_events *e, const cJSON *obj, const char *key, const char *type,
		   const char *reason, const char *msg)
{
	uint64_t now = ks_now_ns();
	struct entry *en;
	char hkey[17], ts[32];

	prune(e, now);
	snprintf(hkey, sizeof(hkey), "%016llx", (unsigned long long)ks_hash(key, strlen(key)));
	en = ks_map_get(e->entries, hkey);
	if (en && !same_event(en->ev, obj, type, reason, msg)) {
		forget(en); /* two keys with one hash: the newer wins */
		settle(en);
		en = NULL;
	}
	if (en) {
		if (en->state == IDLE && !enqueue(en, 0)) {
			drop(e, "pending", obj, reason);
			return;
		}
		en->count++;
		en->last_ns = now;
		ks_list_del(&en->lru);
		ks_list_add(&e->lru, &en->lru);
		ks_event_timestamp(ts, time(NULL));
		ks_event_set_str(en->ev, "lastTimestamp", ts);
		return;
	}
	en = ks_xcalloc(1, sizeof(*en));
	en->e = e;
	ks_list_init(&en->q);
	memcpy(en->hkey, hkey, sizeof(hkey));
	en->ev = ks_event_object(obj, type, reason, msg, e->component, e->host, ++e->seq, e);
	en->count = 1;
	en->last_ns = now;
	if (!enqueue(en, 0)) {
		drop(e, "pending", obj, reason);
		settle(en);
		return;
	}
	en->in_map = true;
	ks_map_put(e->entries, hkey, en);
	ks_list_add(&e->lru, &en->lru);
}

void ks_event(struct ks_events *e, const cJSON *obj, const char *type, const char *reason,
	      const char *fmt, ...)
{
	const char *name = ks_json_str(obj, "metadata.name");
	char msg[MAX_MESSAGE + 1], *okey, *key;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > MAX_MESSAGE)
		ks_event_cut(msg, MAX_MESSAGE);
	type = type ? type : "Normal";
	reason = reason ? reason : "";
	if (!name || !*name) {
		e->st.dropped++;
		ks_warn("event about an object without a name dropped", "reason=%s message=%s",
			ks_logq(reason), ks_logq(msg));
		return;
	}
	okey = ks_event_object_key(obj);
	if (!take_token(e, okey, ks_now_ns())) {
		drop(e, "spam", obj, reason);
		free(okey);
		return;
	}
	key = ks_xasprintf("%s\x1f%s\x1f%s\x1f%s", okey, type, reason, msg);
	record(e, obj, key, type, reason, msg);
	free(key);
	free(okey);
}

struct ks_events *ks_events_new(uv_loop_t *loop, struct ks_kube *kube,
				const struct ks_events_opts *o)
{
	struct ks_events *e = ks_xcalloc(1, sizeof(*e));
	static const struct ks_events_opts none;
	char host[256];

	o = o ? o : &none;
	if (!o->host && gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	e->kube = kube;
	e->component = ks_xstrdup(o->component ? o->component : "kupenstack");
	e->host = ks_xstrdup(o->host ? o->host : host);
	e->burst = o->burst ? o->burst : 25;
	e->refill = o->refill_seconds > 0 ? o->refill_seconds : 300;
	e->window = o->aggregate_window > 0 ? o->aggregate_window : 600;
	e->entries = ks_map_new(64);
	e->buckets = ks_map_new(64);
	ks_list_init(&e->lru);
	ks_list_init(&e->blru);
	ks_list_init(&e->queue);
	ks_list_init(&e->sending);
	uv_timer_init(loop, &e->timer);
	e->timer.data = e;
	return e;
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Empty a list of busy entries, cancelling their requests. */
static void drain(struct ks_list *list)
{
	while (!ks_list_empty(list)) {
		struct entry *en = KS_CONTAINER_OF(list->next, struct entry, q);

		if (en->call)
			ks_kube_cancel(en->call);
		ks_list_del(&en->q);
		en->state = IDLE;
		forget(en);
		settle(en);
	}
}

void ks_events_free(struct ks_events *e)
{
	if (!e)
		return;
	uv_timer_stop(&e->timer);
	drain(&e->sending);
	drain(&e->queue);
	while (!ks_list_empty(&e->lru)) {
		struct entry *en = KS_CONTAINER_OF(e->lru.next, struct entry, lru);

		forget(en);
		settle(en);
	}
	while (!ks_list_empty(&e->blru)) {
		struct bucket *b = KS_CONTAINER_OF(e->blru.next, struct bucket, lru);

		ks_list_del(&b->lru);
		free(b);
	}
	ks_map_free(e->entries);
	ks_map_free(e->buckets);
	free(e->component);
	free(e->host);
	uv_close((uv_handle_t *)&e->timer, on_closed);
}

void ks_events_get_stats(const struct ks_events *e, struct ks_events_stats *out)
{
	*out = e->st;
}
