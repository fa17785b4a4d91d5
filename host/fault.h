#pragma once
/*
 * fault.h: crash points, for tests that prove a crash at the worst moment loses or
 * duplicates nothing. KUPENSTACK_CRASH_AT (read once) names points as a comma-separated
 * list of "point" or "Kind:point"; reaching a named point kills the process with
 * SIGKILL, as `kill -9` would: no drain, no lease release, no atexit. Unset (always, in
 * production) every point is one branch on a cached flag.
 *
 * KUPENSTACK_FREEZE_AT names points the same way where the loop's thread blocks for ever
 * instead (until SIGKILL): a host whose loop is frozen, for the loop
 * watchdog's test (watchdog.h).
 *
 * Points: "status" (the host, a reconcile's outcome in hand, before its status write),
 * and whatever plugins pass to ks.core.fault.point: the stdlib's "created" (OpenStack
 * answered a create; nothing recorded yet), "posted" (a Neutron resource made, not yet
 * tagged with the object's UID), "updated" (an in-place update changed the resource,
 * a Router's interfaces included; nothing recorded yet) and "deleted" (OpenStack
 * accepted the delete; the object's finalizer is still on).
 */
#include <stdbool.h>

/* True if KUPENSTACK_CRASH_AT names point for kind (NULL: any kind). */
bool ks_fault_armed(const char *kind, const char *point);
/* Kill the process with SIGKILL (after one log line) if point is armed for kind; block
 * for ever (after one log line) if KUPENSTACK_FREEZE_AT names it. */
void ks_fault_point(const char *kind, const char *point);
