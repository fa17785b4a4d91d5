#pragma once
/*
 * helm.h: `helm template` run as a child process on the loop, and a cache of what it
 * rendered. Knows nothing of Lua (host/lua/bind_helm.c offers it as ks.core.helm).
 *
 * A render goes in three steps, none of which blocks the loop: the chart's digest
 * (chart.h) is computed and the values are written to a private temporary file
 * (mkstemp, 0600, in $TMPDIR or /tmp), both on libuv's thread pool; then, unless the
 * cache holds the same render, helm runs as a child process (proc.h: its own process
 * group, stdin closed, killed with SIGKILL past the timeout); then its output is
 * parsed as multi-document YAML. The temporary file is removed as soon as helm exits
 * or the render is cancelled.
 *
 * The cache is process-wide: an LRU of KS_HELM_CACHE_SIZE renders, keyed by the chart
 * digest (SHA-256 over the chart's files, host/chart.h) and the exact text of everything else helm
 * is given (binary, arguments, values), compared byte for byte on a hit. Failed
 * renders are not cached. Everything here runs on the loop thread but the digest.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>
#include <uv.h>

#define KS_HELM_CACHE_SIZE 32

struct ks_helm_req;

struct ks_helm_result {
	int err;	      /* 0, or -errno: -ETIMEDOUT, -ENOENT, -EIO (helm failed), ... */
	const char *reason;   /* when err: "ChartError", "SpawnError", "HelmFailed", "Timeout",
			       * "OutputTooLarge" or "ParseError" */
	const char *message;  /* when err: one line, then the last lines of helm's stderr */
	int status;	      /* helm's exit status; 0 when it did not run or was killed */
	const cJSON *objects; /* when !err: a JSON array of the rendered objects, which the
			       * cache owns: valid during the callback only */
	bool cached;	      /* served from the cache: helm did not run */
};

/* Called once, from the loop (never from inside ks_helm_render), unless cancelled. */
typedef void (*ks_helm_cb)(const struct ks_helm_result *res, void *data);

struct ks_helm_opts {
	const char *helm;      /* the binary; NULL: $KS_HELM, else "helm" on PATH */
	const char *chart;     /* a local chart directory or .tgz; required */
	const char *values;    /* the values as JSON text (helm reads JSON as YAML); NULL: none */
	const char *release;   /* the release name; NULL: "kupenstack" */
	const char *namespace; /* --namespace; NULL: helm's default */
	const char *kube_version;	 /* --kube-version; NULL: helm's default */
	const char *const *api_versions; /* each one --api-versions; NULL-terminated; may be NULL */
	double timeout;			 /* seconds helm may run before it is killed; <= 0: 60 */
	bool include_crds;		 /* --include-crds */
};

/*
 * Why o cannot be rendered, as a static message (no chart; a release name helm would
 * refuse, which also keeps it from passing for a flag), or NULL when it can.
 */
const char *ks_helm_check(const struct ks_helm_opts *o);

/*
 * Start rendering o (every string is copied). cb runs once from the loop with the
 * result, unless ks_helm_cancel() comes first. Returns the request, or NULL when
 * ks_helm_check(o) refuses it (cb never runs).
 */
struct ks_helm_req *ks_helm_render(uv_loop_t *loop, const struct ks_helm_opts *o, ks_helm_cb cb,
				   void *data);

/*
 * Cancel a request whose callback has not run: the callback never runs, helm (and
 * its process group) is killed with SIGKILL, the temporary file is removed now, and
 * req must not be used again (the child process frees itself once it is reaped).
 */
void ks_helm_cancel(struct ks_helm_req *req);

/* The pid of the helm child of req while it runs, else 0. */
pid_t ks_helm_pid(const struct ks_helm_req *req);

struct ks_helm_stats {
	uint64_t renders;   /* ks_helm_render calls accepted */
	uint64_t hits;	    /* served from the cache */
	uint64_t runs;	    /* helm processes spawned */
	uint64_t failures;  /* renders that ended in an error (timeouts included) */
	uint64_t timeouts;  /* helm killed past its timeout */
	uint64_t cancelled; /* ks_helm_cancel calls */
	size_t entries;	    /* renders in the cache now */
};

void ks_helm_stats(struct ks_helm_stats *out);
/* Forget every cached render. Not from inside a callback (its objects would go). */
void ks_helm_cache_clear(void);
