/*
 * watchdog.c: the loop's heartbeat and the thread that checks it (watchdog.h).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ks.h"
#include "log.h"
#include "watchdog.h"

struct ks_watchdog {
	uv_timer_t beat; /* the loop's heartbeat */
	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	bool stop; /* under mu */
	_Atomic uint64_t last_ns;
	uint64_t bound_ns;
	char what[96];
};

static void beat(uv_timer_t *t)
{
	struct ks_watchdog *w = t->data;

	atomic_store(&w->last_ns, ks_now_ns());
}

static void watch(void *arg)
{
	struct ks_watchdog *w = arg;
	uint64_t late;

	uv_mutex_lock(&w->mu);
	while (!w->stop) {
		uint64_t before = ks_now_ns(), now;

		uv_cond_timedwait(&w->cv, &w->mu, w->bound_ns / 4);
		if (w->stop)
			break;
		now = ks_now_ns();
		if (now - before > w->bound_ns / 2) {
			/* This thread did not run either: the whole process was stopped
			 * (SIGSTOP, a paused VM), not just the loop. The loop gets a fresh
			 * bound; its own checks (the renew deadline) see the pause. */
			atomic_store(&w->last_ns, now);
			continue;
		}
		late = now - atomic_load(&w->last_ns);
		if (late > w->bound_ns) {
			ks_err("the loop is frozen: exiting so that the Lease is not held by a "
			       "process that cannot act",
			       "frozen_seconds=%.1f bound_seconds=%.1f for=%s", (double)late / 1e9,
			       (double)w->bound_ns / 1e9, ks_logq(w->what));
			fflush(stderr);
			fflush(stdout);
			_exit(3); /* no atexit: the loop's thread still holds what they free */
		}
	}
	uv_mutex_unlock(&w->mu);
}

static void closed(uv_handle_t *h)
{
	free(h->data);
}

struct ks_watchdog *ks_watchdog_start(uv_loop_t *loop, double bound, const char *what)
{
	struct ks_watchdog *w = ks_xcalloc(1, sizeof(*w));
	uint64_t period;

	ks_require(bound > 0);
	w->bound_ns = (uint64_t)(bound * 1e9);
	snprintf(w->what, sizeof(w->what), "%s", what);
	atomic_store(&w->last_ns, ks_now_ns());
	period = KS_MAX(w->bound_ns / 4000000, 1);
	uv_timer_init(loop, &w->beat);
	w->beat.data = w;
	uv_timer_start(&w->beat, beat, period, period);
	uv_unref((uv_handle_t *)&w->beat); /* never what keeps the loop running */
	uv_mutex_init(&w->mu);
	uv_cond_init(&w->cv);
	if (uv_thread_create(&w->thread, watch, w) != 0) {
		ks_err("could not start the loop watchdog", "for=%s", ks_logq(what));
		uv_cond_destroy(&w->cv);
		uv_mutex_destroy(&w->mu);
		uv_close((uv_handle_t *)&w->beat, closed);
		return NULL;
	}
	ks_info("loop watchdog started", "bound_seconds=%.1f for=%s", bound, ks_logq(what));
	return w;
}

void ks_watchdog_stop(struct ks_watchdog *w)
{
	if (!w)
		return;
	uv_mutex_lock(&w->mu);
	w->stop = true;
	uv_cond_signal(&w->cv);
	uv_mutex_unlock(&w->mu);
	uv_thread_join(&w->thread);
	uv_cond_destroy(&w->cv);
	uv_mutex_destroy(&w->mu);
	uv_close((uv_handle_t *)&w->beat, closed);
}
