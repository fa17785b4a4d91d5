#pragma once
/*
 * kt.h: helpers for the tests that run against the real API server tests/env/kube
 * starts ($KUBECONFIG): a loop, synchronous wrappers over the async client, kubectl,
 * and a loopback TCP proxy that can stall or refuse, for fault tests.
 */
#include <stdbool.h>

#include <uv.h>

#include "kube.h"
#include "test.h"

struct kt {
	uv_loop_t loop;
	struct ks_http *http;
	struct ks_kube *kube;
	struct ks_kubeconfig cfg;
};

/* Connect with the kubeconfig in env var (e.g. "KUBECONFIG"); exits 2 if unusable. */
void kt_init(struct kt *t, const char *env);
void kt_deinit(struct kt *t);

/* A finished call's result, kept: body owned here. */
struct kt_res {
	bool done;
	long code;
	char reason[64];
	char message[1024];
	cJSON *body;
};

void kt_res_clear(struct kt_res *r);
/* The ks_kube_cb that fills a struct kt_res. */
void kt_store(struct ks_kube_result *res, void *data);
/* Run the loop until r->done (or seconds pass: then exit 3, the test is broken). */
void kt_wait(struct kt *t, struct kt_res *r, double seconds);
/* Run the loop until pred(data) holds; false if seconds passed first. */
bool kt_until(struct kt *t, bool (*pred)(void *data), void *data, double seconds);
/* Run the loop for about seconds. */
void kt_run_for(struct kt *t, double seconds);

/* The end of a kt_*.c main: the summary, after the teardown only when every case
 * passed. A failed case stops at its ASSERT and can leave a watch or a call on the loop
 * that kt_deinit() would free under it, and a crash there would lose the summary. */
#define KT_MAIN_END(t)                \
	do {                          \
		if (!test_failed_)    \
			kt_deinit(t); \
		TEST_MAIN();          \
	} while (0)

/* Run a shell command (kubectl ...), returning its exit status; output to stderr. */
int kt_sh(const char *fmt, ...) KS_PRINTF(1, 2);

/* The test CRD: group test.kupenstack.io, kind Widget, namespaced, status subresource. */
extern const struct ks_kube_res kt_widgets;
/* Apply tests/kube/widget-crd.yaml and wait until it is served. */
void kt_ensure_crd(struct kt *t);
/* Create namespace ns (deleting what was there before). */
void kt_fresh_namespace(struct kt *t, const char *ns);
/* A Widget object to create: the caller frees it. */
cJSON *kt_widget(const char *ns, const char *name, int size);

/* A loopback TCP proxy to target host:port on the test's loop. */
enum kt_proxy_mode {
	KT_PROXY_FORWARD, /* pass bytes both ways */
	KT_PROXY_STALL,	  /* keep connections open, pass nothing */
	KT_PROXY_REFUSE,  /* reset every connection, new ones too */
};

struct kt_proxy;

struct kt_proxy *kt_proxy_start(struct kt *t, const char *host, int port);
int kt_proxy_port(const struct kt_proxy *p);
void kt_proxy_set_mode(struct kt_proxy *p, enum kt_proxy_mode mode);
/* Connections accepted so far. */
unsigned kt_proxy_accepted(const struct kt_proxy *p);
void kt_proxy_stop(struct kt_proxy *p);
