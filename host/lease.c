/* lease.c: leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection. */
#include "lease.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "ks.h"
#include "log.h"
#include "watchdog.h"

/* client-go's JitterFactor for acquire attempts. */
#define JITTER 1.2

static const struct ks_kube_res leases = { "coordination.k8s.io", "v1", "leases", true };

enum state {
	IDLE,	   /* new, or released */
	RUNNING,   /* acquiring or leading */
	RELEASING, /* on_stopped and the release write still to come, or done */
	CLOSING,   /* freed: waiting for the timers to close */
};

struct ks_lease {
	struct ks_kube *kube;
	char *ns, *name, *identity;
	double duration, deadline, period;
	void (*on_started)(struct ks_lease *l, void *data);
	void (*on_stopped)(struct ks_lease *l, void *data);
	void *data;
	uv_timer_t retry; /* the next step: an attempt, or the release */
	/* Leading: the renew deadline. Otherwise: the limit of the request in flight. */
	uv_timer_t limit;
	int open; /* timers not yet closed */
	enum state state;
	bool leading;
	bool fast;	    /* the write in flight is a renew without a read first */
	bool release_write; /* releasing: on_stopped and the write are still due */
	bool reread;	    /* releasing: the write lost a race, the Lease was read again */
	struct ks_kube_call *call;
	uint64_t attempt_ns; /* when the attempt in flight started */
	uint64_t seen_ns;    /* when the record last changed, on our clock */
	cJSON *seen;	     /* the Lease as last read or written */
	struct ks_watchdog *watchdog;
	void (*done)(struct ks_lease *l, void *data);
	void *done_data;
};

static uint64_t ms(double s)
{
	return s > 0 ? (uint64_t)(s * 1000 + 0.5) : 0;
}

/* MicroTime, RFC 3339 with microseconds in UTC: "2006-01-02T15:04:05.000000Z". */
static void micro_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static char *default_identity(void)
{
	char host[256];
	uint64_t r;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = ks_now_ns() ^ (uint64_t)(ks_rand01() * 9007199254740992.0);
	return ks_xasprintf("%s_%016llx", host, (unsigned long long)r);
}

static const char *holder_of(const cJSON *lease)
{
	const char *h = ks_json_str(lease, "spec.holderIdentity");

	return h ? h : "";
}

static void set_str(cJSON *o, const char *key, const char *val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, val);
}

static void set_num(cJSON *o, const char *key, double val)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddNumberToObject(o, key, val);
}

/*
 * The Lease to write: what we saw (or a new one) with a fresh spec held by holder.
 * keep: the holder stays (a renew), so acquireTime and leaseTransitions stay too.
 */
static cJSON *record(const struct ks_lease *l, const char *holder, double duration, bool keep)
{
	cJSON *o, *m, *spec;
	const char *acquired = ks_json_str(l->seen, "spec.acquireTime");
	long long trans = ks_json_int(l->seen, "spec.leaseTransitions", 0);
	char now[40];

	micro_time(now, sizeof(now));
	if (l->seen) {
		o = cJSON_Duplicate(l->seen, true);
		trans += keep ? 0 : 1;
	} else {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
		cJSON_AddStringToObject(o, "kind", "Lease");
		m = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(m, "name", l->name);
		cJSON_AddStringToObject(m, "namespace", l->ns);
		trans = 0;
	}
	spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
	if (!cJSON_IsObject(spec)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "spec");
		spec = cJSON_AddObjectToObject(o, "spec");
	}
	set_str(spec, "holderIdentity", holder);
	set_num(spec, "leaseDurationSeconds", duration);
	set_str(spec, "acquireTime", keep && acquired && *holder ? acquired : now);
	set_str(spec, "renewTime", now);
	set_num(spec, "leaseTransitions", (double)trans);
	return o;
}

/* Keep obj as the record seen; note the time when it differs from the last one. */
static void observe(struct ks_lease *l, cJSON *obj)
{
	ks_json_strip_object(obj);
	if (!l->seen || !ks_json_equal(cJSON_GetObjectItemCaseSensitive(l->seen, "spec"),
				       cJSON_GetObjectItemCaseSensitive(obj, "spec")))
		l->seen_ns = ks_now_ns();
	cJSON_Delete(l->seen);
	l->seen = obj;
}

/* Whether the holder seen has let leaseDurationSeconds pass without a change. */
static bool expired(const struct ks_lease *l)
{
	double secs = (double)ks_json_int(l->seen, "spec.leaseDurationSeconds", 0);

	if (secs <= 0)
		secs = ceil(l->duration);
	return (double)(ks_now_ns() - l->seen_ns) >= secs * 1e9;
}

static void cancel_call(struct ks_lease *l)
{
	if (l->call)
		ks_kube_cancel(l->call);
	l->call = NULL;
}

static void on_retry(uv_timer_t *t);

/* Wait for the next attempt: retry_period, with jitter when not leading. */
static void schedule(struct ks_lease *l)
{
	double s = l->period;

	if (!l->leading) {
		s += ks_rand01() * JITTER * l->period;
		uv_timer_stop(&l->limit);
	}
	uv_timer_start(&l->retry, on_retry, ms(s), 0);
}

static void lose(struct ks_lease *l, const char *why)
{
	cancel_call(l);
	uv_timer_stop(&l->limit);
	l->leading = false;
	ks_warn("lost leadership", "lease=%s/%s holder=%s reason=%s", l->ns, l->name,
		ks_logq(l->identity), ks_logq(why));
	schedule(l);
	if (l->on_stopped)
		l->on_stopped(l, l->data);
}

static void on_written(struct ks_kube_result *res, void *data);
static void on_got(struct ks_kube_result *res, void *data);
static void on_released(struct ks_kube_result *res, void *data);

/*
 * One request on the Lease, cancellable (ks_kube_get/_create/_replace give no handle):
 * GET with obj NULL, POST to the collection, or PUT with obj's resourceVersion.
 */
static void request(struct ks_lease *l, const char *method, const cJSON *obj, ks_kube_cb cb)
{
	char *path = ks_kube_path(&leases, l->ns, strcmp(method, "POST") ? l->name : NULL, NULL);
	char *body = obj ? ks_json_print(obj) : NULL;

	l->call = ks_kube_request(l->kube, method, path, obj ? "application/json" : NULL, body, cb,
				  l);
	free(body);
	free(path);
}

static void write_lease(struct ks_lease *l, bool keep)
{
	cJSON *o = record(l, l->identity, ceil(l->duration), keep);

	request(l, l->seen ? "PUT" : "POST", o, on_written);
	cJSON_Delete(o);
}

/* One try to acquire or renew (client-go's tryAcquireOrRenew). */
static void attempt(struct ks_lease *l)
{
	l->attempt_ns = ks_now_ns();
	if (!l->leading)
		uv_timer_start(&l->limit, on_retry, ms(l->deadline), 0);
	/* The leader renews straight from the record it wrote; on any failure, it
	 * reads the Lease and tries again (client-go since 1.27). */
	l->fast = l->leading && l->seen;
	if (l->fast)
		write_lease(l, true);
	else
		request(l, "GET", NULL, on_got);
}

static void failed(struct ks_lease *l, const char *what, struct ks_kube_result *res)
{
	if (res->code == 409)
		ks_debug("lease write lost a race", "lease=%s/%s holder=%s", l->ns, l->name,
			 ks_logq(l->identity));
	else
		ks_warn(what, "lease=%s/%s holder=%s code=%ld reason=%s error=%s", l->ns, l->name,
			ks_logq(l->identity), res->code, ks_logq(res->reason),
			ks_logq(res->message));
	schedule(l);
}

static void on_got(struct ks_kube_result *res, void *data)
{
	struct ks_lease *l = data;
	const char *holder;
	bool mine;

	l->call = NULL;
	if (res->code == 404) {
		cJSON_Delete(l->seen);
		l->seen = NULL;
		write_lease(l, false);
		return;
	}
	if (!ks_kube_ok(res) || !cJSON_IsObject(res->body)) {
		failed(l, "could not read lease", res);
		return;
	}
	observe(l, res->body);
	res->body = NULL;
	holder = holder_of(l->seen);
	mine = strcmp(holder, l->identity) == 0;
	if (*holder && !mine && !expired(l)) {
		if (l->leading)
			lose(l, "another holder renewed the lease");
		else
			schedule(l);
		return;
	}
	write_lease(l, mine);
}

static void on_written(struct ks_kube_result *res, void *data)
{
	struct ks_lease *l = data;

	l->call = NULL;
	if (!ks_kube_ok(res) || !cJSON_IsObject(res->body)) {
		if (l->fast)
			request(l, "GET", NULL, on_got);
		else
			failed(l, "could not write lease", res);
		l->fast = false;
		return;
	}
	observe(l, res->body);
	res->body = NULL;
	uv_timer_start(&l->limit, on_retry,
		       ms(l->deadline - (double)(ks_now_ns() - l->attempt_ns) / 1e9), 0);
	if (l->leading) {
		schedule(l);
		return;
	}
	l->leading = true;
	ks_info("became leader", "lease=%s/%s holder=%s transitions=%lld", l->ns, l->name,
		ks_logq(l->identity), ks_json_int(l->seen, "spec.leaseTransitions", 0));
	schedule(l);
	if (l->on_started)
		l->on_started(l, l->data);
}

static void finish_release(struct ks_lease *l)
{
	uv_timer_stop(&l->retry);
	uv_timer_stop(&l->limit);
	l->state = IDLE;
	if (l->done)
		l->done(l, l->done_data);
}

static void put_release(struct ks_lease *l)
{
	cJSON *o = record(l, "", 1, true);

	request(l, "PUT", o, on_released);
	cJSON_Delete(o);
}

/* Releasing, from the loop: on_stopped, then the write of an empty holder. */
static void release_step(struct ks_lease *l)
{
	if (!l->release_write) {
		finish_release(l);
		return;
	}
	l->release_write = false;
	if (l->on_stopped) {
		l->on_stopped(l, l->data);
		if (l->state != RELEASING)
			return; /* freed meanwhile */
	}
	uv_timer_start(&l->limit, on_retry, ms(l->deadline), 0);
	put_release(l);
}

/* The release lost a race (a renew cut short, a foreign write): still ours? */
static void on_reread(struct ks_kube_result *res, void *data)
{
	struct ks_lease *l = data;

	l->call = NULL;
	if (ks_kube_ok(res) && cJSON_IsObject(res->body)) {
		observe(l, res->body);
		res->body = NULL;
		if (strcmp(holder_of(l->seen), l->identity) == 0) {
			put_release(l);
			return;
		}
	}
	ks_debug("lease not ours to release", "lease=%s/%s holder=%s code=%ld", l->ns, l->name,
		 ks_logq(l->identity), res->code);
	finish_release(l);
}

static void on_released(struct ks_kube_result *res, void *data)
{
	struct ks_lease *l = data;

	l->call = NULL;
	if (res->code == 409 && !l->reread) {
		l->reread = true;
		request(l, "GET", NULL, on_reread);
		return;
	}
	if (ks_kube_ok(res) && cJSON_IsObject(res->body)) {
		observe(l, res->body);
		res->body = NULL;
		ks_info("lease released", "lease=%s/%s holder=%s", l->ns, l->name,
			ks_logq(l->identity));
	} else {
		ks_warn("could not release lease",
			"lease=%s/%s holder=%s code=%ld reason=%s error=%s", l->ns, l->name,
			ks_logq(l->identity), res->code, ks_logq(res->reason),
			ks_logq(res->message));
	}
	finish_release(l);
}

/* Both timers: the next step, or a limit passed. */
static void on_retry(uv_timer_t *t)
{
	struct ks_lease *l = t->data;
	bool limit = t == &l->limit;

	if (l->state == RELEASING) {
		if (limit) {
			cancel_call(l);
			ks_warn("could not release lease", "lease=%s/%s holder=%s reason=Timeout",
				l->ns, l->name, ks_logq(l->identity));
			finish_release(l);
		} else {
			release_step(l);
		}
	} else if (l->state == RUNNING && !limit) {
		attempt(l);
	} else if (l->state == RUNNING && l->leading) {
		lose(l, "renew deadline passed");
	} else if (l->state == RUNNING) {
		cancel_call(l);
		ks_debug("lease attempt timed out", "lease=%s/%s holder=%s", l->ns, l->name,
			 ks_logq(l->identity));
		schedule(l);
	}
}

static bool valid(const struct ks_lease_opts *o, double dur, double dl, double per)
{
	const char *why = NULL;

	if (!o->namespace || !*o->namespace || !o->name || !*o->name)
		why = "namespace and name are required";
	else if (o->identity && !*o->identity)
		why = "identity is empty";
	else if (!(per > 0 && dl > JITTER * per && dur > dl))
		why = "need lease_duration > renew_deadline > 1.2 * retry_period > 0";
	if (why)
		ks_err("invalid lease options", "namespace=%s name=%s reason=%s",
		       ks_logq(o->namespace ? o->namespace : ""), ks_logq(o->name ? o->name : ""),
		       ks_logq(why));
	return !why;
}

struct ks_lease *ks_lease_new(uv_loop_t *loop, struct ks_kube *kube, const struct ks_lease_opts *o)
{
	double dur = o->lease_duration ? o->lease_duration : 15;
	double dl = o->renew_deadline ? o->renew_deadline : 10;
	double per = o->retry_period ? o->retry_period : 2;
	struct ks_lease *l;

	if (!valid(o, dur, dl, per))
		return NULL;
	l = ks_xcalloc(1, sizeof(*l));
	l->kube = kube;
	l->ns = ks_xstrdup(o->namespace);
	l->name = ks_xstrdup(o->name);
	l->identity = o->identity ? ks_xstrdup(o->identity) : default_identity();
	l->duration = dur;
	l->deadline = dl;
	l->period = per;
	l->on_started = o->on_started;
	l->on_stopped = o->on_stopped;
	l->data = o->data;
	uv_timer_init(loop, &l->retry);
	uv_timer_init(loop, &l->limit);
	l->retry.data = l->limit.data = l;
	l->open = 2;
	return l;
}

double ks_lease_loop_bound(double renew_deadline)
{
	return (renew_deadline > 0 ? renew_deadline : 10) / 2;
}

void ks_lease_start(struct ks_lease *l)
{
	ks_require(l->state != CLOSING);
	if (l->state != IDLE)
		return;
	l->state = RUNNING;
	if (!l->watchdog) /* started again after a release: the watchdog still runs */
		l->watchdog =
			ks_watchdog_start(l->retry.loop, ks_lease_loop_bound(l->deadline),
					  "leader election: a frozen loop cannot renew the Lease");
	attempt(l);
}

bool ks_lease_leading(const struct ks_lease *l)
{
	return l->leading;
}

const char *ks_lease_identity(const struct ks_lease *l)
{
	return l->identity;
}

void ks_lease_release(struct ks_lease *l, void (*done)(struct ks_lease *l, void *data), void *data)
{
	ks_require(l->state != CLOSING);
	l->done = done;
	l->done_data = data;
	if (l->state == RELEASING)
		return; /* already on its way */
	cancel_call(l);
	uv_timer_stop(&l->limit);
	l->release_write = l->leading && l->seen;
	l->reread = false;
	l->leading = false;
	l->state = RELEASING;
	uv_timer_start(&l->retry, on_retry, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
	struct ks_lease *l = h->data;

	if (--l->open > 0)
		return;
	cJSON_Delete(l->seen);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}

void ks_lease_free(struct ks_lease *l)
{
	if (!l)
		return;
	ks_require(l->state != CLOSING);
	cancel_call(l);
	if (l->leading)
		ks_info("leader election stopped while leading", "lease=%s/%s holder=%s", l->ns,
			l->name, ks_logq(l->identity));
	l->leading = false;
	l->state = CLOSING;
	ks_watchdog_stop(l->watchdog);
	l->watchdog = NULL;
	uv_close((uv_handle_t *)&l->retry, on_closed);
	uv_close((uv_handle_t *)&l->limit, on_closed);
}
