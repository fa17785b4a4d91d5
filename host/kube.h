#pragma once
/*
 * kube.h: the Kubernetes API client: typed paths for any resource, GET, LIST with
 * limit/continue paging, CREATE, server-side apply, merge and JSON patches, replace,
 * the status subresource, DELETE with preconditions and propagation, and streaming
 * requests for watches. All asynchronous on the host's loop, through ks_http.
 *
 * Errors are the API server's own: a failed request reports the Kubernetes Status it
 * returned (code, reason, message), or, when no response came, code 0 with a reason
 * naming the transport failure (ConnectionRefused, Timeout, TLSError, ...) and a
 * message naming the server.
 */
#include <stdbool.h>

#include <cJSON.h>
#include <uv.h>

#include "http.h"
#include "kubeconfig.h"

struct ks_kube;
struct ks_kube_call;

/* A kind of resource: group ("" for the core group), version, plural resource name. */
struct ks_kube_res {
	const char *group;
	const char *version;
	const char *resource;
	bool namespaced;
};

struct ks_kube_result {
	long code;	     /* HTTP status; 0 when no response came */
	const char *reason;  /* Status.reason ("NotFound", "Conflict", ...) or transport */
	const char *message; /* a one-line message a person can act on */
	/* The decoded response body (the object, the list, the Status), or NULL. The
	 * callback may take it: set to NULL and it is not freed. */
	cJSON *body;
};

static inline bool ks_kube_ok(const struct ks_kube_result *r)
{
	return r->code >= 200 && r->code < 300;
}

/* Called once per call unless cancelled; res is only valid during the call. */
typedef void (*ks_kube_cb)(struct ks_kube_result *res, void *data);

/* Create a client for cfg (copied). Never NULL. http is shared, not owned. */
struct ks_kube *ks_kube_new(struct ks_http *http, const struct ks_kubeconfig *cfg);
void ks_kube_free(struct ks_kube *k);
const struct ks_kubeconfig *ks_kube_config(const struct ks_kube *k);

/*
 * The API path of res in namespace ns (NULL for cluster scope or all namespaces),
 * object name (NULL for the collection) and subresource sub (NULL for none).
 * The caller frees it.
 */
char *ks_kube_path(const struct ks_kube_res *res, const char *ns, const char *name,
		   const char *sub);

/*
 * The general request: method, path (with its query), an optional body with its
 * content type. Returns a handle for ks_kube_cancel, valid until cb has run.
 */
struct ks_kube_call *ks_kube_request(struct ks_kube *k, const char *method, const char *path,
				     const char *content_type, const char *body, ks_kube_cb cb,
				     void *data);
/*
 * A streaming GET (watches): on_data gets the 2xx body as it arrives; cb gets the end
 * of the stream or the failure. A non-2xx answer goes to cb only, as a Status.
 */
struct ks_kube_call *ks_kube_stream(struct ks_kube *k, const char *path, ks_http_data_cb on_data,
				    ks_kube_cb cb, void *data);
/* Abandon a call: its callback does not run. A no-op from inside its own callback. */
void ks_kube_cancel(struct ks_kube_call *call);

struct ks_kube_list_opts {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version;
	long limit; /* page size, 0 for the server's default (all at once) */
};

void ks_kube_get(struct ks_kube *k, const struct ks_kube_res *res, const char *ns, const char *name,
		 ks_kube_cb cb, void *data);
/*
 * LIST every page (following `continue`) into one List object whose `items` hold all
 * pages and whose metadata.resourceVersion is the list's. Returns a handle for
 * ks_kube_cancel, valid until cb has run.
 */
struct ks_kube_call *ks_kube_list(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
				  const struct ks_kube_list_opts *o, ks_kube_cb cb, void *data);
void ks_kube_create(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		    const cJSON *obj, ks_kube_cb cb, void *data);
/* PUT: replace (optimistic concurrency through the object's resourceVersion). */
void ks_kube_replace(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		     const char *name, const char *sub, const cJSON *obj, ks_kube_cb cb,
		     void *data);
/* Server-side apply of obj as field_manager; force takes fields other managers own. */
void ks_kube_apply(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		   const char *name, const char *sub, const cJSON *obj, const char *field_manager,
		   bool force, ks_kube_cb cb, void *data);

enum ks_kube_patch {
	KS_PATCH_MERGE,
	KS_PATCH_JSON,
	KS_PATCH_STRATEGIC,
};

void ks_kube_patch(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		   const char *name, const char *sub, enum ks_kube_patch type, const cJSON *patch,
		   ks_kube_cb cb, void *data);

struct ks_kube_delete_opts {
	const char *uid;	      /* precondition, or NULL */
	const char *resource_version; /* precondition, or NULL */
	const char *propagation;      /* "Foreground", "Background", "Orphan" or NULL */
};

void ks_kube_delete(struct ks_kube *k, const struct ks_kube_res *res, const char *ns,
		    const char *name, const struct ks_kube_delete_opts *o, ks_kube_cb cb,
		    void *data);

/* Percent-encode s for a query value into a fresh string. */
char *ks_kube_escape(const char *s);

/* Optional observer of every finished request (metrics): method and HTTP code. */
typedef void (*ks_kube_observe_cb)(const char *method, long code, double seconds, void *data);
void ks_kube_set_observer(struct ks_kube *k, ks_kube_observe_cb cb, void *data);
