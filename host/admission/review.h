#pragma once
/*
 * review.h: admission.k8s.io/v1 AdmissionReview in and out, and running the policies that
 * match one request: defaults (mutating: a JSON patch) or validation (validating: a
 * denial, warnings). Pure: no loop, no I/O; the webhook (admission.c) and `kupenstack
 * policy test` (cli.c) share it.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "admission/policy.h"

struct ks_review_out {
	bool allowed;
	char *message;	 /* the denial: "[policy] message" */
	cJSON *warnings; /* array of strings, or NULL */
	cJSON *patch;	 /* JSON patch (array), or NULL */
	cJSON *audits;	 /* array of "[policy] message" for Audit policies, or NULL */
};

/*
 * Run the policies of ps that match r: with mutate, every default in order (each sees the
 * object as the ones before left it; r->object is changed and the patch collected); else
 * every validate. A Deny policy's message (or its error: a policy that fails denies) ends
 * the run, refused; a Warn policy's adds a warning; an Audit policy's is counted in
 * audits only. out is initialised here; free it with ks_review_out_deinit().
 */
void ks_review_run(struct ks_policy *const *ps, size_t n, struct ks_policy_req *r,
		   const struct ks_policy_env *env, bool mutate, struct ks_review_out *out);
void ks_review_out_deinit(struct ks_review_out *out);

/*
 * Parse an AdmissionReview: returns the document (free it; r points into it) and sets
 * *uid, or NULL with *err (static text).
 */
cJSON *ks_review_parse(const char *body, struct ks_policy_req *r, const char **uid, bool *dry_run,
		       const char **err);
/* The AdmissionReview answering uid with out, as JSON text (free it). */
char *ks_review_response(const char *uid, const struct ks_review_out *out);
/* Set the "dotted.path" fields (an object) on obj, appending JSON patch ops to patch.
 * Returns 0, or -EINVAL with *err (free it) naming the field that is in the way. */
int ks_review_set_fields(cJSON *obj, const cJSON *fields, cJSON *patch, char **err);
