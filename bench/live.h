#pragma once
/*
 * live.h: what the benchmarks against the live API server share (linked with
 * tests/kube/kt.o): a pacer that keeps N asynchronous calls going at a rate with a
 * cap on those in flight, the Widgets they create, percentiles, a process's memory
 * and CPU from /proc, the test cluster's own CPU, and a host's /metrics.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "kt.h"

struct live_pace;

/* Start call i (0 <= i < n); it must end with exactly one live_pace_done(). */
typedef void (*live_issue_cb)(struct live_pace *p, int i);

struct live_pace {
	int n;		  /* calls to make */
	int max_inflight; /* 0: 1 */
	double rate;	  /* calls per second; 0: as fast as max_inflight allows */
	live_issue_cb issue;
	void *data;
	/* Filled in by live_pace_run(). */
	int issued, done, failed, inflight;
	uint64_t t0, t_end; /* first call started, last call done (ks_now_ns) */
	uv_timer_t tick;
	struct kt *t;
	bool ticking;
};

/* Run p's calls on t's loop until all are done. Returns 0, or -ETIMEDOUT when
 * seconds passed first (calls still in flight are then abandoned to the loop). */
int live_pace_run(struct kt *t, struct live_pace *p, double seconds);
/* Call i is over; ok false counts it as failed. */
void live_pace_done(struct live_pace *p, bool ok);
/* The calls' achieved rate per second. */
double live_pace_rate(const struct live_pace *p);

/* Create widgets "<prefix>-NNNNN" 0..n-1 in ns, max_inflight at once; Widgets as
 * an operator would write them (labels, spec). Returns the number that failed. */
int live_create_widgets(struct kt *t, const char *ns, const char *prefix, int n, int max_inflight,
			double *secs);
/* Delete those widgets again, max_inflight at once (far faster than the namespace
 * controller, which deletes a collection one object at a time). Returns the number
 * that failed (a Widget already gone is no failure). */
int live_delete_widgets(struct kt *t, const char *ns, const char *prefix, int n, int max_inflight,
			double *secs);
/* The object live_create_widgets() creates as number i: the caller frees it. */
cJSON *live_widget(const char *ns, const char *prefix, int i);

/* The p-th percentile (0..100) of v[0..n), which it sorts; 0 for n == 0. */
double live_pct(double *v, size_t n, double p);

/* A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); pid 0 is this process. -1
 * when unreadable. */
long live_proc_kib(pid_t pid, const char *field);
/* The same from /proc/PID/smaps_rollup ("Pss", "Pss_File": shared pages split among the
 * processes that map them). */
long live_smaps_kib(pid_t pid, const char *field);
/* User + system CPU seconds of pid (0: this process) from /proc/PID/stat; -1 if
 * unreadable. */
double live_proc_cpu(pid_t pid);

/* The test cluster's API server and etcd ($KS_KUBE_DIR/NAME.pid), to tell what they
 * spent and whether someone restarted them meanwhile (other tests do). */
struct live_server {
	pid_t api, etcd;
	double cpu; /* their CPU seconds at the mark; -1: not this machine's test cluster */
};

void live_server_mark(struct live_server *s);
/* CPU seconds they spent since the mark; -1 when unknown or when either restarted. */
double live_server_spent(const struct live_server *s);
/* Did the API server restart since the mark? */
bool live_server_restarted(const struct live_server *s);

/* A free TCP port on 127.0.0.1 (for a host's --metrics-addr), 0 if none. */
int live_free_port(void);
/* GET http://127.0.0.1:port/metrics into out. Returns 0, or -EIO. */
int live_scrape(struct kt *t, int port, struct ks_buf *out);
/* The sum of every series of metric name in text (a Prometheus exposition); 0 if none. */
double live_metric_sum(const char *text, const char *name);
/* The mean of histogram name from its _sum and _count series, in ms. */
double live_metric_mean_ms(const char *text, const char *name);

/* A fresh namespace name "<base>-<pid>" in out. */
void live_ns_name(char *out, size_t cap, const char *base);
/* Delete namespace ns (and everything in it), waiting up to seconds for it to go;
 * 0: leave the namespace controller to it. */
void live_delete_namespace(const char *ns, int seconds);
