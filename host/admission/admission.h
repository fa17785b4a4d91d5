#pragma once
/*
 * admission.h: the operator's admission webhooks (`kupenstack run --admission-addr`):
 * serves validate.kupenstack.io and mutate.kupenstack.io over HTTPS on the loop, runs
 * the ClusterPolicies and Policies (kupenstack.io/v1alpha1) it watches, keeps their
 * status, keeps its CA and serving certificate in a Secret of the operator's namespace
 * (made, reused across restarts, rotated before expiry) and the caBundle and rules of its
 * ValidatingWebhookConfiguration and MutatingWebhookConfiguration current.
 */
#include <uv.h>

struct ks_kube;
struct ks_events;
struct ks_admission;

struct ks_admission_opts {
	const char *addr; /* listen, "127.0.0.1:8443" */
	const char *url;  /* base URL the API server calls; NULL: https://addr */
	const char
		*namespace; /* the operator's (Secret; never admitted); NULL: kupenstack-system */
	const char *failure_policy; /* "Fail" or "Ignore"; NULL: Fail */
	int timeout_seconds;	    /* 0: 5 */
	long cert_seconds;	    /* serving certificate validity; 0: a year */
	const char *name;	    /* webhook configurations and Secret; NULL: kupenstack */
	double audit_seconds;	    /* between audits of existing objects; 0: 300 */
	/* In a cluster: the Service in namespace in front of addr, "NAME" or "NAME:PORT"
	 * (443): the webhook configurations say clientConfig.service, not url, and the
	 * serving certificate names NAME.namespace.svc. NULL: clientConfig.url. */
	const char *service;
	/* A PEM file of the CA that signed the API server's webhook client certificate:
	 * callers without a certificate it signed are refused at the TLS handshake. NULL:
	 * no client certificate asked for. */
	const char *client_ca;
};

/* Start (watches, Secret, server, audits). events (not owned; may be NULL) gets the
 * audit's PolicyViolation Events. Never NULL; failures are logged and retried. */
struct ks_admission *ks_admission_new(uv_loop_t *loop, struct ks_kube *kube,
				      struct ks_events *events, const struct ks_admission_opts *o);
/* Stop serving and free (once the loop has closed its handles). */
void ks_admission_free(struct ks_admission *a);
/*
 * Set option i of o from a --admission-* flag (0 addr, 1 url, 2 namespace, 3
 * failure-policy, 4 cert-seconds, 5 audit-seconds, 6 service, 7 client-ca: the file is
 * read and must hold a CA certificate). Returns 0, or -EINVAL after printing why; url
 * and service together are refused by ks_admission_check.
 */
int ks_admission_flag(struct ks_admission_opts *o, int i, const char *arg);
/* The flags taken together: 0, or -EINVAL after printing why. */
int ks_admission_check(const struct ks_admission_opts *o);
