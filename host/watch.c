/* watch.c: the reflector (LIST + WATCH + relist) and the watch-stream decoder. */
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ks.h"
#include "log.h"

#define BACKOFF_MIN 0.8
#define BACKOFF_MAX 30.0
#define REFUSED_MAX 1.0

void ks_watch_decoder_init(struct ks_watch_decoder *d, size_t max_event)
{
	ks_buf_init(&d->buf);
	d->scanned = 0;
	d->max_event = max_event ? max_event : 64u << 20;
}

void ks_watch_decoder_deinit(struct ks_watch_decoder *d)
{
	ks_buf_deinit(&d->buf);
	d->scanned = 0;
}

static int event_type(const char *t, enum ks_watch_type *out)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };

	for (size_t i = 0; t && i < KS_ARRAY_SIZE(names); i++) {
		if (strcmp(t, names[i]) == 0) {
			*out = (enum ks_watch_type)i;
			return 0;
		}
	}
	return -EBADMSG;
}

/* One line: {"type": "...", "object": {...}}. */
static int decode_line(const char *p, size_t n, ks_watch_event_cb cb, void *data, char **err)
{
	cJSON *ev = ks_json_parse(p, n), *obj;
	enum ks_watch_type type;
	int rc = -EBADMSG;

	if (!cJSON_IsObject(ev)) {
		*err = ks_xasprintf("watch event is not a JSON object: %.*s", (int)KS_MIN(n, 60),
				    p);
		goto out_free;
	}
	if (event_type(ks_json_str(ev, "type"), &type) != 0) {
		*err = ks_xstrdup("watch event has no known type");
		goto out_free;
	}
	obj = cJSON_DetachItemFromObjectCaseSensitive(ev, "object");
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		*err = ks_xstrdup("watch event has no object");
		goto out_free;
	}
	cb(type, obj, data);
	cJSON_Delete(obj);
	rc = 0;
out_free:
	cJSON_Delete(ev);
	return rc;
}

int ks_watch_decode(struct ks_watch_decoder *d, const char *p, size_t n, ks_watch_event_cb cb,
		    void *data, char **err)
{
	size_t start = 0;
	int rc = 0;

	*err = NULL;
	ks_buf_append(&d->buf, p, n);
	while (rc == 0) {
		char *nl = memchr(d->buf.data + d->scanned, '\n', d->buf.len - d->scanned);
		size_t len;

		if (!nl) {
			d->scanned = d->buf.len;
			break;
		}
		len = (size_t)(nl - (d->buf.data + start));
		d->scanned = (size_t)(nl - d->buf.data) + 1;
		if (len > d->max_event) {
			*err = ks_xasprintf("watch event over %zu bytes", d->max_event);
			rc = -EMSGSIZE;
		} else if (len > 0 && !(len == 1 && d->buf.data[start] == '\r')) {
			rc = decode_line(d->buf.data + start, len, cb, data, err);
		}
		start = d->scanned;
	}
	if (rc == 0 && d->buf.len - start > d->max_event) {
		*err = ks_xasprintf("watch event over %zu bytes", d->max_event);
		rc = -EMSGSIZE;
	}
	ks_buf_consume(&d->buf, start);
	d->scanned -= start;
	return rc;
}

enum next_step {
	STEP_LIST,
	STEP_WATCH,
};

struct ks_watch {
	uv_loop_t *loop;
	struct ks_kube *kube;
	struct ks_cache *cache;
	struct ks_watch_opts o;
	char *group, *version, *resource, *ns, *selector;
	uv_timer_t retry;
	uv_timer_t silence;
	enum next_step next;
	struct ks_kube_call *call;
	struct ks_watch_decoder dec;
	char *rv;
	double backoff;
	bool synced;
	bool gone;	 /* the stream said 410: relist */
	bool bad_stream; /* the stream held garbage */
	bool stopping;
	int open_handles;
	struct ks_watch_stats stats;
};

static void do_list(struct ks_watch *w);
static void do_watch(struct ks_watch *w);

static void set_rv(struct ks_watch *w, const char *rv)
{
	if (!rv || !*rv)
		return;
	free(w->rv);
	w->rv = ks_xstrdup(rv);
}

static void on_retry(uv_timer_t *t)
{
	struct ks_watch *w = t->data;

	if (w->next == STEP_LIST)
		do_list(w);
	else
		do_watch(w);
}

/* Run step after the current backoff (capped at cap seconds), and grow the backoff. */
static void schedule(struct ks_watch *w, enum next_step step, double cap)
{
	double delay = KS_MIN(w->backoff, cap);

	delay *= 0.9 + 0.2 * ks_rand01();
	w->next = step;
	uv_timer_start(&w->retry, on_retry, (uint64_t)(delay * 1000), 0);
	w->backoff = KS_MIN(w->backoff * 2, BACKOFF_MAX);
}

static void on_list(struct ks_kube_result *res, void *data)
{
	struct ks_watch *w = data;
	cJSON *items;

	w->call = NULL;
	if (!ks_kube_ok(res)) {
		w->stats.errors++;
		ks_warn("list failed", "resource=%s code=%ld reason=%s error=%s", w->resource,
			res->code, res->reason, ks_logq(res->message));
		schedule(w, STEP_LIST,
			 res->code == 0 && !strcmp(res->reason, "ConnectionRefused") ? REFUSED_MAX
										     : BACKOFF_MAX);
		return;
	}
	items = cJSON_GetObjectItemCaseSensitive(res->body, "items");
	ks_cache_replace(w->cache, items);
	set_rv(w, ks_json_str(res->body, "metadata.resourceVersion"));
	w->stats.lists++;
	w->synced = true;
	w->backoff = BACKOFF_MIN;
	ks_debug("listed", "resource=%s objects=%zu rv=%s", w->resource, ks_cache_len(w->cache),
		 w->rv ? w->rv : "");
	if (w->o.on_synced)
		w->o.on_synced(w, w->o.data);
	if (!w->stopping)
		do_watch(w);
}

static void do_list(struct ks_watch *w)
{
	struct ks_kube_list_opts lo = {
		.label_selector = w->selector,
		.limit = w->o.page_size ? w->o.page_size : 500,
	};

	w->call = ks_kube_list(w->kube, &w->o.res, w->ns, &lo, on_list, w);
}

static void on_event(enum ks_watch_type type, cJSON *obj, void *data)
{
	struct ks_watch *w = data;

	if (w->gone || w->bad_stream)
		return; /* the stream is over for us: nothing after the error applies */
	switch (type) {
	case KS_WATCH_ADDED:
	case KS_WATCH_MODIFIED:
		set_rv(w, ks_json_str(obj, "metadata.resourceVersion"));
		ks_cache_upsert(w->cache, obj);
		break;
	case KS_WATCH_DELETED:
		set_rv(w, ks_json_str(obj, "metadata.resourceVersion"));
		ks_cache_remove(w->cache, obj);
		break;
	case KS_WATCH_BOOKMARK:
		set_rv(w, ks_json_str(obj, "metadata.resourceVersion"));
		return;
	case KS_WATCH_ERROR:
		if (ks_json_int(obj, "code", 0) == 410)
			w->gone = true;
		else
			w->bad_stream = true;
		ks_info("watch error event", "resource=%s code=%lld reason=%s error=%s",
			w->resource, ks_json_int(obj, "code", 0),
			ks_json_str(obj, "reason") ? ks_json_str(obj, "reason") : "",
			ks_logq(ks_json_str(obj, "message")));
		return;
	}
	w->stats.events++;
}

static void on_silence(uv_timer_t *t)
{
	struct ks_watch *w = t->data;

	w->stats.stalls++;
	ks_warn("watch silent past its deadline, reopening", "resource=%s rv=%s", w->resource,
		w->rv ? w->rv : "");
	if (w->call) {
		ks_kube_cancel(w->call);
		w->call = NULL;
	}
	ks_watch_decoder_deinit(&w->dec);
	ks_watch_decoder_init(&w->dec, 0);
	do_watch(w);
}

static int on_data(struct ks_http_req *req, const char *p, size_t n, void *data)
{
	struct ks_watch *w = data;
	char *err = NULL;
	int rc;

	(void)req;
	uv_timer_again(&w->silence);
	rc = ks_watch_decode(&w->dec, p, n, on_event, w, &err);
	if (rc) {
		w->bad_stream = true;
		ks_warn("bad watch stream, reopening", "resource=%s error=%s", w->resource,
			ks_logq(err));
		free(err);
	}
	return w->gone || w->bad_stream;
}

static void on_watch_end(struct ks_kube_result *res, void *data)
{
	struct ks_watch *w = data;
	bool gone = w->gone || res->code == 410, bad = w->bad_stream;

	w->call = NULL;
	w->gone = w->bad_stream = false;
	uv_timer_stop(&w->silence);
	ks_watch_decoder_deinit(&w->dec);
	ks_watch_decoder_init(&w->dec, 0);
	if (gone) {
		w->stats.relists++;
		ks_info("resourceVersion expired, relisting", "resource=%s rv=%s", w->resource,
			w->rv ? w->rv : "");
		do_list(w);
	} else if (bad) {
		w->stats.errors++;
		schedule(w, STEP_WATCH, BACKOFF_MAX);
	} else if (ks_kube_ok(res)) {
		w->backoff = BACKOFF_MIN;
		do_watch(w);
	} else {
		w->stats.errors++;
		ks_warn("watch failed", "resource=%s code=%ld reason=%s error=%s", w->resource,
			res->code, res->reason, ks_logq(res->message));
		schedule(w, STEP_WATCH,
			 res->code == 0 && !strcmp(res->reason, "ConnectionRefused") ? REFUSED_MAX
										     : BACKOFF_MAX);
	}
}

static void do_watch(struct ks_watch *w)
{
	unsigned span = w->o.timeout_max - w->o.timeout_min;
	unsigned timeout = w->o.timeout_min + (unsigned)(ks_rand01() * (span + 1));
	char *base = ks_kube_path(&w->o.res, w->ns, NULL, NULL), *sel = NULL, *path;
	double grace = w->o.silence_grace > 0 ? w->o.silence_grace : 30;

	if (w->selector)
		sel = ks_kube_escape(w->selector);
	path = ks_xasprintf("%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s"
			    "&timeoutSeconds=%u%s%s",
			    base, w->rv ? w->rv : "0", timeout, sel ? "&labelSelector=" : "",
			    sel ? sel : "");
	w->stats.watches++;
	w->call = ks_kube_stream(w->kube, path, on_data, on_watch_end, w);
	uv_timer_start(&w->silence, on_silence, (uint64_t)((timeout + grace) * 1000),
		       (uint64_t)((timeout + grace) * 1000));
	free(path);
	free(base);
	free(sel);
}

struct ks_watch *ks_watch_new(uv_loop_t *loop, struct ks_kube *kube, struct ks_cache *cache,
			      const struct ks_watch_opts *o)
{
	struct ks_watch *w = ks_xcalloc(1, sizeof(*w));

	w->loop = loop;
	w->kube = kube;
	w->cache = cache;
	w->o = *o;
	w->group = ks_xstrdup(o->res.group ? o->res.group : "");
	w->version = ks_xstrdup(o->res.version);
	w->resource = ks_xstrdup(o->res.resource);
	w->o.res.group = w->group;
	w->o.res.version = w->version;
	w->o.res.resource = w->resource;
	w->ns = o->namespace ? ks_xstrdup(o->namespace) : NULL;
	w->selector = o->label_selector ? ks_xstrdup(o->label_selector) : NULL;
	if (!w->o.timeout_min || w->o.timeout_max < w->o.timeout_min) {
		w->o.timeout_min = 300;
		w->o.timeout_max = 600;
	}
	w->backoff = BACKOFF_MIN;
	ks_watch_decoder_init(&w->dec, 0);
	uv_timer_init(loop, &w->retry);
	uv_timer_init(loop, &w->silence);
	w->retry.data = w->silence.data = w;
	w->open_handles = 2;
	return w;
}

int ks_watch_start(struct ks_watch *w)
{
	do_list(w);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct ks_watch *w = h->data;

	if (--w->open_handles)
		return;
	ks_watch_decoder_deinit(&w->dec);
	free(w->group);
	free(w->version);
	free(w->resource);
	free(w->ns);
	free(w->selector);
	free(w->rv);
	free(w);
}

void ks_watch_free(struct ks_watch *w)
{
	if (!w)
		return;
	w->stopping = true;
	if (w->call)
		ks_kube_cancel(w->call);
	w->call = NULL;
	uv_close((uv_handle_t *)&w->retry, on_closed);
	uv_close((uv_handle_t *)&w->silence, on_closed);
}

bool ks_watch_synced(const struct ks_watch *w)
{
	return w->synced;
}

const char *ks_watch_resource_version(const struct ks_watch *w)
{
	return w->rv ? w->rv : "";
}

void ks_watch_get_stats(const struct ks_watch *w, struct ks_watch_stats *out)
{
	*out = w->stats;
}
