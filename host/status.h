#pragma once
/*
 * status.h: what a reconcile's outcome makes of an object's .status: the plugin's
 * fields merged in, conditions merged by type with lastTransitionTime kept while a
 * condition's status does not change, observedGeneration, and the host's own
 * conditions on failure (Progressing, Available), set beside the plugin's own (which it
 * keeps, failed or not) and never over a type the plugin reported. Pure functions, no I/O.
 */
#include <stdbool.h>

#include <cJSON.h>

struct ks_outcome {
	const cJSON *status;	 /* fields to set in .status (top-level keys replace), or NULL */
	const cJSON *conditions; /* array of {type, status, reason, message}, or NULL */
	double requeue_after;	 /* seconds; 0: none */
	const char *error;	 /* non-NULL: the reconcile failed with this message */
	bool terminal;		 /* with error: do not retry */
	const char *reason;	 /* with error: the condition reason; NULL: Transient/Terminal */
	double backoff;		 /* with error: retry no sooner than this (s); 0: per-key backoff */
};

/*
 * The status obj should have after res, at time now (RFC 3339). Returns a new value
 * the caller frees, or NULL when it equals the current one (nothing to write).
 */
cJSON *ks_status_next(const cJSON *obj, const struct ks_outcome *res, const char *now);

/* A merge patch {"status": next} that also removes keys of the current status that
 * next lacks. Takes next. */
cJSON *ks_status_patch(const cJSON *obj, cJSON *next);

/* Now as RFC 3339 with seconds ("2026-11-24T15:00:00Z") into out[21]. */
void ks_status_now(char out[32]);
