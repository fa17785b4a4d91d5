#pragma once
/*
 * lease.h: leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * leaderelection semantics, so that of several replicas of the operator exactly one
 * reconciles at a time.
 *
 * - Every retry_period (times a random 1 to 2.2 when not leading, client-go's jitter
 *   of 1.2) the Lease is read and, when it is free, taken: it is free when it does
 *   not exist (it is created), when its holder is empty, or when it has not changed
 *   for its leaseDurationSeconds as observed on our own monotonic clock since we last
 *   saw the record change. The remote renewTime is never trusted.
 * - Writes are PUTs with the resourceVersion read (optimistic concurrency): a 409
 *   means another replica won the race. leaseTransitions grows by one on each change
 *   of holder. acquireTime and renewTime are MicroTime, "2006-01-02T15:04:05.000000Z".
 * - The leader renews every retry_period. With no successful renew within
 *   renew_deadline of the last one (counted from when that attempt began), it stops
 *   leading at once (on_stopped) and goes back to trying to acquire: since
 *   renew_deadline < lease_duration, it stops before any other replica may take the
 *   Lease over, so there are never two leaders.
 *
 * - A watchdog thread (watchdog.h), started with the election, exits the process when
 *   the loop has not turned for ks_lease_loop_bound() (half the renew deadline): the
 *   renew deadline is checked on the loop, so a frozen loop would otherwise keep
 *   leading while the Lease expires under it. The Lease may be taken over only
 *   lease_duration after our last renew, which is at most retry_period before the
 *   freeze began: bound + retry_period < lease_duration, so the frozen leader is gone
 *   before another replica can lead.
 *
 * Transitions are logged: "became leader", "lost leadership", "lease released", with
 * lease=<namespace>/<name> and holder=<identity>.
 */
#include <stdbool.h>

#include <uv.h>

#include "kube.h"

struct ks_lease;

/* How long the loop may go without turning before the watchdog ends the process: half
 * of renew_deadline (0: the default, 10 s). A plugin's run gets half of it (its slice,
 * lua/engine.h), so a plugin is stopped before the watchdog fires. */
double ks_lease_loop_bound(double renew_deadline);

struct ks_lease_opts {
	const char *namespace; /* Lease namespace, e.g. "kupenstack-system" */
	const char *name;      /* Lease name, e.g. "kupenstack" */
	const char *identity;  /* holderIdentity; NULL: "<hostname>_<random hex>" */
	double lease_duration; /* s; 0: 15 */
	double renew_deadline; /* s; 0: 10 */
	double retry_period;   /* s; 0: 2 */
	/* Became leader. */
	void (*on_started)(struct ks_lease *l, void *data);
	/* Lost leadership (or released it). Never runs twice in a row without an
	 * on_started between. */
	void (*on_stopped)(struct ks_lease *l, void *data);
	void *data;
};

/*
 * A candidate on loop that talks through kube (shared, not owned: it must outlive
 * the lease). The options are copied. Returns NULL (and logs why) when namespace or
 * name is missing or the durations are not lease_duration > renew_deadline >
 * 1.2 * retry_period > 0, as client-go requires. The callbacks always run from the
 * loop, never from inside a ks_lease_* call; they may call any ks_lease_* function,
 * ks_lease_free() included.
 */
struct ks_lease *ks_lease_new(uv_loop_t *loop, struct ks_kube *kube, const struct ks_lease_opts *o);
/* Start trying to acquire, at once. A no-op unless the lease is new or released. */
void ks_lease_start(struct ks_lease *l);
/* Whether we lead now: true from on_started until on_stopped (or a release call). */
bool ks_lease_leading(const struct ks_lease *l);
/* Our holderIdentity; valid until ks_lease_free(). */
const char *ks_lease_identity(const struct ks_lease *l);
/*
 * Graceful release: stop trying. If leading: stop leading at once (ks_lease_leading()
 * is false on return), call on_stopped from the loop, then write the Lease with an
 * empty holder and leaseDurationSeconds 1 (as client-go's ReleaseOnCancel) so that
 * another replica may take over without waiting for it to expire (a write that
 * loses a race reads the Lease once more and writes again if it is still ours).
 * Then call done (may be NULL) once, from the loop, whether the write succeeded or
 * not (a failure is logged; the write gives up after renew_deadline). Calling it
 * again before done replaces done. The lease may be started again afterwards.
 */
void ks_lease_release(struct ks_lease *l, void (*done)(struct ks_lease *l, void *data), void *data);
/*
 * Stop at once, without writing: a Lease we held expires for the others after its
 * duration. No callback runs after this. NULL is a no-op. The memory is freed when
 * the loop has closed the lease's timers.
 */
void ks_lease_free(struct ks_lease *l);
