#pragma once
/* policy_impl.h: what policy.c (the Lua) and match.c (what a policy applies to) share.
 * Internal to host/admission/. */
#include "admission/policy.h"

#define MAX_LIST 64 /* kinds, namespaces, reads */

struct ks_policy {
	char *id, *name, *ns; /* ns NULL: a ClusterPolicy */
	enum ks_policy_action action;
	char *kinds[MAX_LIST], *names[MAX_LIST], *reads[MAX_LIST + 1];
	cJSON *selector; /* matchLabels, or NULL */
	unsigned ops;	 /* bit per operation */
	struct ks_lua *lua;
	int ref; /* the table the source returned */
	bool has_validate, has_default;
};

/* The bit of operation op (CREATE ...), 0 for another word. */
unsigned ks_policy_op_bit(const char *op);
/* Fill p's match from spec.match m. Returns NULL, or the error naming the field (free it). */
char *ks_policy_parse_match(struct ks_policy *p, const cJSON *m);
