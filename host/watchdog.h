#pragma once
/*
 * watchdog.h: a thread outside the loop that ends the process when the loop has not
 * turned for longer than a bound. The loop beats (a timer every quarter of the bound);
 * the thread, waking as often, exits the process with status 3 and one log line when
 * the last beat is older than the bound. Used by leader election (lease.c): a leader
 * whose loop is frozen (C code that does not return, a plugin stuck where the sandbox
 * cannot reach) can neither renew nor act, and must not keep the Lease; once the process
 * is gone the Lease expires and a standby takes over.
 */
#include <uv.h>

struct ks_watchdog;

/* Start watching loop (from the loop's thread). bound: seconds, > 0. what names the
 * reason in the log line. NULL if the thread cannot start (logged). */
struct ks_watchdog *ks_watchdog_start(uv_loop_t *loop, double bound, const char *what);
/* Stop the thread (joined) and close the timer; the memory is freed once the timer is
 * closed (the loop must run). NULL is a no-op. */
void ks_watchdog_stop(struct ks_watchdog *w);
