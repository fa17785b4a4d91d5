#pragma once
/*
 * fixture_impl.h: one fixture's run, shared by fixture_dir.c (folders, TAP, the vetting
 * of a new version), fixture.c (one fixture's files and run), fixture_fake.c (the fake
 * world: http.yaml, the cache, the writes) and fixture_check.c (expected.yaml against
 * what happened). Nothing else includes it.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <uv.h>

#include "cache.h"
#include "ks.h"
#include "lua/fake.h"
#include "lua/plugin.h"

/* The fixed clock of fixtures: the lastTransitionTime of a condition that changes. */
#define KS_FIXTURE_NOW "2030-01-01T00:00:00Z"
#define KS_FIXTURE_MAX_KINDS (1 + 2 * KS_PLUGIN_MAX_KINDS)

/* One call of http.yaml: what the plugin must ask, and the answer. */
struct ks_fixture_call {
	char *method, *url;
	cJSON *body; /* a subset of the request's JSON body (or a string it holds), or NULL */
	long status; /* 0: no response (reason, message) */
	char *reason, *message;
	char *headers; /* "Name: value\r\n" lines */
	char *resp;    /* the response body */
	size_t resp_len;
	bool used;
};

struct ks_fixture_cache {
	const struct ks_plugin_kind *kind;
	struct ks_cache *cache;
};

struct ks_fixture {
	struct ks_lua_fake fake;
	struct ks_plugin *plugin;
	cJSON *obj;	/* object.yaml */
	cJSON *objects; /* every object of cache/ and object.yaml: kube.fetch, patch answers */
	struct ks_fixture_cache caches[KS_FIXTURE_MAX_KINDS]; /* the kinds the plugin declares */
	size_t ncaches;
	struct ks_fixture_call *calls;
	size_t ncalls;
	bool any_order;	    /* http.yaml order: any */
	unsigned nhttp;	    /* requests the plugin made */
	cJSON *writes;	    /* [{verb, resource, namespace, name, subresource, patchType, body}] */
	cJSON *events;	    /* [{type, reason, message}] */
	struct ks_buf diag; /* why the fixture fails: lines, each ending in "\n" */
	bool deleting;	    /* object.yaml has a deletionTimestamp: finalize */
	/* What the host would do after the reconcile. */
	bool done;
	char *error, *reason;
	bool terminal;
	double requeue_after, backoff;
	cJSON *status; /* the .status afterwards */
	bool status_written, finalizer_removed;
};

/* A plugin folder: its source and its optional clouds.yaml and config.yaml. */
struct ks_fixture_src {
	const char *dir;
	char *name; /* the plugin folder's base name, for fixture names */
	char *file; /* the plugin file's base name, for the sandbox's chunk name */
	const char *src;
	size_t len;
	char *clouds_yaml;
	cJSON *config; /* the plugin's settings (ctx.config), or NULL */
};

/* fixture.c. Run the fixture in fdir against ps on loop: x (zeroed by the caller) holds
 * what happened, and x->diag why it fails (empty: it passed). Free with ks_fixture_free. */
void ks_fixture_eval(struct ks_fixture *x, const struct ks_fixture_src *ps, const char *fdir,
		     uv_loop_t *loop, const char *stdlib);
void ks_fixture_free(struct ks_fixture *x);
/* The file dir/name parsed as YAML: every document (all) or exactly one. NULL and
 * *err when it is unreadable or not YAML; NULL and no *err when it does not exist. */
cJSON *ks_fixture_read_yaml(const char *dir, const char *name, bool all, char **err);

/* Add one line of diagnosis (no newline needed). */
void ks_fixture_diag(struct ks_fixture *x, const char *fmt, ...) KS_PRINTF(2, 3);
/* The plural resource of obj's kind (as the plugin declares it, else derived) into out;
 * its group and version into the others (pointing into obj). False without apiVersion/kind. */
bool ks_fixture_res_of(const struct ks_fixture *x, const cJSON *obj, char *group, size_t gcap,
		       char *version, size_t vcap, char *resource, size_t rcap);

/* fixture_fake.c. Read http.yaml (doc, NULL: no calls expected). Returns 0, or -EINVAL
 * with *err (free it) naming the entry. */
int ks_fixture_load_http(struct ks_fixture *x, const cJSON *doc, char **err);
/* Point x->fake at the fixture's world. */
void ks_fixture_fake_init(struct ks_fixture *x);
/* Diagnose the calls of http.yaml never made. */
void ks_fixture_http_leftover(struct ks_fixture *x);
void ks_fixture_calls_free(struct ks_fixture *x);

/* fixture_check.c. Is want a subset of got? Each difference is diagnosed with path. */
bool ks_fixture_subset(struct ks_fixture *x, const char *path, const cJSON *want, const cJSON *got);
/* Compare the run with expected.yaml, diagnosing each difference. */
void ks_fixture_check(struct ks_fixture *x, const cJSON *expected);
