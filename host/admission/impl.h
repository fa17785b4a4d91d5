#pragma once
/* impl.h: what admission.c (policies, requests) and webhook.c (certificates, webhook
 * configurations) share. Internal to host/admission/. */
#include <stdbool.h>
#include <stdint.h>

#include "admission/admission.h"
#include "admission/cert.h"
#include "admission/https.h"
#include "admission/policy.h"
#include "cache.h"
#include "event.h"
#include "kube.h"
#include "watch.h"

#define MAX_READS 32

struct read_cache {
	char *res; /* "group/version/resource" */
	char *group, *version, *resource;
	struct ks_cache *cache;
	struct ks_watch *watch;
	void *handler; /* its cache handler's data */
};

struct entry { /* one ClusterPolicy or Policy */
	char *id;
	char *audit; /* the last audit's summary, to write it (and its Events) when it changes */
	long long generation; /* the last one compiled */
	struct ks_policy *p;  /* the version in force, or NULL */
	bool cluster;
	bool from_cm;	 /* spec.luaFrom.configMap: re-read at every audit */
	char *source_rv; /* the resourceVersion of the ConfigMap last compiled */
	bool deferred;	 /* its namespace's share of the loop was spent: checked again later */
};

struct ns_share { /* what a namespace's Policies have spent of the loop's time (source.c) */
	char *ns;
	uint64_t paid_ns; /* when their use is paid back, at their share (GCRA) */
};

struct pending { /* an admitted CREATE not yet in the cache */
	char *group, *resource, *ns, *name;
	cJSON *obj;
	uint64_t expires_ns;
};

struct ks_admission {
	uv_loop_t *loop;
	struct ks_kube *kube;
	struct ks_admission_opts o;
	char *url;		  /* clientConfig.url, or NULL with svc_name */
	char *svc_name, *svc_dns; /* the Service in o.namespace; NAME.NAMESPACE.svc */
	int svc_port;
	char *client_ca_pem; /* --admission-client-ca's text, or NULL */
	bool no_serve;	     /* the client CA could not be read: never serve without it */
	struct ks_https *https;
	struct ks_cert_pair cert;   /* in force (cert_pem, key_pem; ca_pem is the bundle) */
	char *next_cert, *next_key; /* served after the grace delay */
	uv_timer_t cert_timer, swap_timer, apply_timer, audit_timer;
	struct ks_events *events;
	bool apply_pending;
	int applying;
	struct ks_cache *cpol_cache, *pol_cache, *ns_cache;
	struct ks_watch *cpol_watch, *pol_watch, *ns_watch;
	struct read_cache reads[MAX_READS];
	size_t nreads;
	struct entry *entries;
	size_t nentries;
	struct ns_share *shares;
	size_t nshares;
	struct pending *pending;
	size_t npending;
	int open_timers;
	bool stopping;
};

/* webhook.c */
void ks_adm_cert_start(struct ks_admission *a);
void ks_adm_apply_soon(struct ks_admission *a);
/* audit.c */
void ks_adm_audit_soon(struct ks_admission *a, double seconds);
void ks_adm_audit_run(uv_timer_t *t);
/* reads.c */
/* ctx.list: the cache of res (NULL with *err until synced) plus what is pending. */
cJSON *ks_adm_env_list(void *data, const char *res, const char *ns, const char **err);
struct read_cache *ks_adm_find_read(struct ks_admission *a, const char *res);
/* Start a cache of res ("group/version/resource") unless there is one. */
void ks_adm_ensure_read(struct ks_admission *a, const char *res);
void ks_adm_pending_drop(struct ks_admission *a, size_t i);
/* Count an admitted CREATE (request doc) of a resource some policy reads until its cache
 * has it (or for 30 s). */
void ks_adm_remember(struct ks_admission *a, const cJSON *doc, const struct ks_policy_req *r);
/* source.c */
/* Load a new version of e (its generation set) from cr: spec.lua or the ConfigMap of
 * spec.luaFrom (read first), its fixtures run before it is put in force (ks_adm_put). */
void ks_adm_load(struct ks_admission *a, struct entry *e, const cJSON *cr);
/* Re-read the ConfigMaps of policies loaded from one; a changed one is loaded anew. */
void ks_adm_recheck_sources(struct ks_admission *a);
/* admission.c */
/* Put p (or, NULL, keep the version in force and say err) for e; writes cr's status. */
void ks_adm_put(struct ks_admission *a, struct entry *e, const cJSON *cr, struct ks_policy *p,
		const char *err);
const struct ks_kube_res *ks_adm_policy_res(bool cluster);
cJSON *ks_adm_rules(struct ks_admission *a);
int ks_adm_serve(void *data, const char *path, const char *body, size_t len, struct ks_buf *out,
		 const char **ctype);
