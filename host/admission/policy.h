#pragma once
/*
 * policy.h: one operator-authored admission policy (a ClusterPolicy or a namespaced
 * Policy, kupenstack.io/v1alpha1): what it matches and its Lua, compiled in a sandboxed
 * state of its own (host/lua/engine.h) with tight limits, since it runs in the API
 * server's request path. Its source returns a table:
 *
 *   return { reads = { "kupenstack.io/v1alpha1/instances" },  -- caches ctx.list may read
 *            validate = function(obj, old, ctx) return nil or "denial message" end,
 *            default = function(obj, ctx) return { ["spec.x"] = value } end }
 *
 * The state offers ks.core.json and ks.core.log only (no HTTP, no kube, no library);
 * ctx holds the request's operation, user (username, groups), namespace (name, labels,
 * annotations) and list(resource, namespace) over the host's caches. A namespaced Policy
 * applies to requests in its own namespace only, matches kupenstack.io kinds only, and its
 * ctx.list reads its own namespace only. Knows no loop of its own and no HTTP.
 */
#include <stdbool.h>

#include <cJSON.h>
#include <uv.h>

enum ks_policy_action { KS_POLICY_DENY, KS_POLICY_WARN, KS_POLICY_AUDIT };

/* What ctx.list reads: a new array of the objects of res ("group/version/resource",
 * "v1/namespaces" for the core group) in namespace ns (NULL: all), or NULL with *err (a
 * static string). */
struct ks_policy_env {
	cJSON *(*list)(void *data, const char *res, const char *ns, const char **err);
	void *data;
};

/* One admission request, as the policies see it; nothing is owned. */
struct ks_policy_req {
	const char *operation; /* CREATE UPDATE DELETE CONNECT */
	const char *ns;	       /* "" for cluster-scoped objects */
	const char *name, *group, *kind;
	cJSON *object;		    /* NULL for DELETE */
	const cJSON *old;	    /* NULL for CREATE */
	const cJSON *user;	    /* userInfo: username, groups */
	const cJSON *namespace_obj; /* the request's Namespace, or NULL */
};

struct ks_policy;

/* The limits every policy runs under (per call); a namespaced Policy (which a namespace's
 * own users may be granted) gets a tenth of the instructions and time. */
#define KS_POLICY_MEMORY (16u << 20)
#define KS_POLICY_INSTRUCTIONS 10000000ull
#define KS_POLICY_SECONDS 1.0

/*
 * Compile the policy cr (a ClusterPolicy or Policy object) and run its top level.
 * Returns it, or NULL with *err (free it) naming the field or the Lua error.
 */
struct ks_policy *ks_policy_new(uv_loop_t *loop, const cJSON *cr, char **err);
void ks_policy_free(struct ks_policy *p);
/* "name" for a ClusterPolicy, "namespace/name" for a Policy. */
const char *ks_policy_id(const struct ks_policy *p);
/* Its metadata.name, for messages. */
const char *ks_policy_name(const struct ks_policy *p);
enum ks_policy_action ks_policy_action(const struct ks_policy *p);
bool ks_policy_has_default(const struct ks_policy *p);
bool ks_policy_has_validate(const struct ks_policy *p);
/* The resources ctx.list may read ("group/version/resource"), NULL-terminated. */
const char *const *ks_policy_reads(const struct ks_policy *p);
/* The webhook rules the policy needs (an array of admissionregistration rules), new. */
cJSON *ks_policy_rules(const struct ks_policy *p);
/* The kinds it matches, as written in spec.match.kinds, NULL-terminated. */
const char *const *ks_policy_kinds(const struct ks_policy *p);
/* Whether a request in namespace ns ("" for cluster scope; ns_obj its Namespace or NULL)
 * is in the policy's scope (namespaces, selector, a Policy's own namespace). */
bool ks_policy_in_scope(const struct ks_policy *p, const char *ns, const cJSON *ns_obj);
/* Whether the policy applies to r. */
bool ks_policy_matches(const struct ks_policy *p, const struct ks_policy_req *r);

/*
 * validate(obj, old, ctx): 0 with *msg NULL (admitted) or *msg the denial (free it);
 * -EINVAL with *msg the error (the policy raised one or hit a limit).
 */
int ks_policy_validate(struct ks_policy *p, const struct ks_policy_req *r,
		       const struct ks_policy_env *env, char **msg);
/*
 * default(obj, ctx): 0 with *fields NULL or a new object of "dotted.path" -> value to
 * set; -EINVAL with *msg the error.
 */
int ks_policy_default(struct ks_policy *p, const struct ks_policy_req *r,
		      const struct ks_policy_env *env, cJSON **fields, char **msg);
