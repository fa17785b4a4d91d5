/*
 * bench_reconcile.c: the controller engine against the live API server. `kupenstack
 * run` with a trivial Lua plugin (bench/plugins/widget.lua: reconcile returns a status
 * field) over 1,000 Widgets, next to the raw rate at which a plain client (this
 * process, ks_kube_patch) writes the same 1,000 statuses at the same concurrency
 * (right before and right after the host's first run: others share the server), and
 * their ratio.
 * The host's runs: 1,000 Widgets already there when it starts; 1,000 created as fast
 * as possible while it runs, then 1,000 at 300/s, then 250 at 50/s (create -> status
 * written, as a watch of ours sees it). Then the host's RSS, CPU, API requests and
 * queue times from its /metrics, and the CPU the API server and etcd spent per
 * status write. BENCH_N and BENCH_CONCURRENCY override 1000 and 8.
 * needs: kube
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "json.h"
#include "ks.h"
#include "live.h"
#include "watch.h"

extern char **environ;

enum { PH_RAW, PH_START, PH_BURST, PH_PACED, PH_LIGHT, NPHASES };

/* Widgets "<prefix>-NNNNN": when each create was sent and when its status was seen. */
struct phase {
	char prefix[2];
	int n, nwritten;
	uint64_t *created, *written;
	uint64_t first, last; /* first and last status seen */
};

struct bench {
	struct kt t;
	char ns[64], ns_raw[64], log[128];
	int n, k, port, raw_pass;
	double raw_server_ms[2];    /* API server + etcd CPU per raw status write, per pass */
	double raw_client_ms[2];    /* ours per raw status write (the patch and our watch) */
	double raw[2], cold, burst; /* statuses/s: plain client before/after, host */
	double cold_server_ms;	    /* the same per status the host wrote, Widgets there */
	double host_ms;		    /* the host's CPU per reconcile, Widgets there */
	struct live_server srv_run, srv_start; /* at our start, at the host's */
	struct phase ph[NPHASES];
	/* our watches: [0] the host's namespace, [1] the plain client's */
	struct ks_cache *cache[2];
	struct ks_watch *watch[2];
	bool synced[2];
	int creating; /* the phase create_one() works for */
	pid_t host;
	uint64_t host_t0;
};

struct call {
	struct live_pace *p;
	struct phase *ph;
	int i;
};

static void figure(const char *what, double v, const char *unit)
{
	printf("%-50s %10.1f %s\n", what, v, unit);
}

/* Has the plain client's write of this pass landed in o? */
static bool raw_written(const struct bench *b, const struct ks_cache_obj *o)
{
	char needle[32];
	const char *p;
	int n = snprintf(needle, sizeof(needle), "\"pass\":%d", b->raw_pass);

	p = memmem(o->json, o->len, needle, (size_t)n);
	return p && (p[n] == ',' || p[n] == '}');
}

/* Has the host's status caught up with o's generation? Its status holds no conditions:
 * one observedGeneration, at the top. */
static bool host_written(const struct ks_cache_obj *o)
{
	const char *st = memmem(o->json, o->len, "\"status\":{", 10), *og;

	og = st ? memmem(st, o->len - (size_t)(st - o->json), "\"observedGeneration\":", 21) : NULL;
	return og && strtoll(og + 21, NULL, 10) == o->generation;
}

/* The watches' handler: note when a Widget's status was written. */
static void seen(const struct ks_cache_obj *o, void *data)
{
	uint64_t now = ks_now_ns();
	struct bench *b = data;
	const char *name = strchr(o->key, '/');
	struct phase *ph = NULL;
	int i;

	if (!name || name[2] != '-')
		return;
	for (int p = 0; p < NPHASES; p++)
		ph = name[1] == b->ph[p].prefix[0] ? &b->ph[p] : ph;
	i = atoi(name + 3);
	if (!ph || i < 0 || i >= ph->n || ph->written[i])
		return;
	if (ph == &b->ph[PH_RAW] ? !raw_written(b, o) : !host_written(o))
		return;
	ph->written[i] = now;
	ph->first = ph->nwritten++ ? ph->first : now;
	ph->last = now;
}

static void on_add(const struct ks_cache_obj *o, void *data)
{
	seen(o, data);
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	(void)old;
	seen(o, data);
}

static void on_synced(struct ks_watch *w, void *data)
{
	struct bench *b = data;

	b->synced[w == b->watch[1]] = true;
}

static bool bool_true(void *data)
{
	return *(bool *)data;
}

static void call_done(struct ks_kube_result *res, void *data)
{
	struct call *c = data;

	if (!ks_kube_ok(res) && c->p->failed < 3)
		fprintf(stderr, "%ld %s: %s\n", res->code, res->reason, res->message);
	if (c->ph && c->ph->created && !c->ph->written[c->i] && !ks_kube_ok(res))
		c->ph->created[c->i] = 0;
	live_pace_done(c->p, ks_kube_ok(res));
	free(c);
}

static void create_one(struct live_pace *p, int i)
{
	struct bench *b = p->data;
	struct phase *ph = &b->ph[b->creating];
	struct call *c = ks_xmalloc(sizeof(*c));
	cJSON *o = live_widget(b->ns, ph->prefix, i);

	*c = (struct call){ p, ph, i };
	ph->created[i] = ks_now_ns();
	ks_kube_create(b->t.kube, &kt_widgets, b->ns, o, call_done, c);
	cJSON_Delete(o);
}

static void status_one(struct live_pace *p, int i)
{
	struct bench *b = p->data;
	struct call *c = ks_xmalloc(sizeof(*c));
	char name[32], *body;
	cJSON *patch;

	*c = (struct call){ p, NULL, i };
	snprintf(name, sizeof(name), "r-%05d", i);
	/* a new value each pass: a patch that changes nothing is not written to etcd */
	body = ks_xasprintf("{\"status\":{\"phase\":\"Ready\",\"pass\":%d,"
			    "\"observedGeneration\":1}}",
			    b->raw_pass);
	patch = cJSON_Parse(body);
	ks_kube_patch(b->t.kube, &kt_widgets, b->ns_raw, name, "status", KS_PATCH_MERGE, patch,
		      call_done, c);
	cJSON_Delete(patch);
	free(body);
}

/* `kupenstack run` on b->ns, logging to b->log. Returns 0 or -errno. */
static int start_host(struct bench *b)
{
	char addr[32], conc[16];
	char *argv[] = { "bin/kupenstack",
			 "run",
			 "--plugins",
			 "bench/plugins",
			 "--namespace",
			 b->ns,
			 "--metrics-addr",
			 addr,
			 "--concurrency",
			 conc,
			 NULL };
	posix_spawn_file_actions_t fa;
	int rc;

	b->port = live_free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", b->port);
	snprintf(conc, sizeof(conc), "%d", b->k);
	snprintf(b->log, sizeof(b->log), "/tmp/bench-reconcile-%d.log", (int)getpid());
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, b->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	live_server_mark(&b->srv_start);
	b->host_t0 = ks_now_ns();
	rc = posix_spawn(&b->host, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

static int stop_host(struct bench *b)
{
	int status = 0;

	kill(b->host, SIGTERM);
	for (int i = 0; i < 400 && waitpid(b->host, &status, WNOHANG) == 0; i++)
		usleep(100000);
	if (waitpid(b->host, &status, WNOHANG) == 0) {
		kill(b->host, SIGKILL);
		waitpid(b->host, &status, 0);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool phase_over(void *data)
{
	struct phase *ph = data;

	return ph->nwritten == ph->n;
}

/* Watch namespace ns as watch w (0: the host's, 1: the plain client's). */
static int start_watch(struct bench *b, int w, const char *ns)
{
	b->cache[w] = ks_cache_new();
	ks_cache_add_handler(
		b->cache[w],
		&(struct ks_cache_handler){ .on_add = on_add, .on_update = on_update, .data = b });
	b->watch[w] = ks_watch_new(
		&b->t.loop, b->t.kube, b->cache[w],
		&(struct ks_watch_opts){
			.res = kt_widgets, .namespace = ns, .on_synced = on_synced, .data = b });
	ks_watch_start(b->watch[w]);
	return kt_until(&b->t, bool_true, &b->synced[w], 60) ? 0 : -ETIMEDOUT;
}

/* The plain client: the same status merge-patches, k at a time, on its own Widgets,
 * measured as the host is: from the first write our watch sees to the last. Returns
 * statuses/s, 0 on failure. */
static double raw_rate(struct bench *b, int pass)
{
	struct live_pace p = { .n = b->n, .max_inflight = b->k, .issue = status_one, .data = b };
	struct phase *ph = &b->ph[PH_RAW];
	struct live_server srv;
	double cpu, mine;

	b->raw_pass = pass;
	memset(ph->written, 0, (size_t)ph->n * sizeof(*ph->written));
	ph->nwritten = 0;
	live_server_mark(&srv);
	mine = live_proc_cpu(0);
	live_pace_run(&b->t, &p, 600);
	cpu = live_server_spent(&srv);
	b->raw_server_ms[pass - 1] = cpu >= 0 ? cpu * 1e3 / p.n : 0;
	if (p.failed || !kt_until(&b->t, phase_over, ph, 60))
		return 0;
	b->raw_client_ms[pass - 1] = (live_proc_cpu(0) - mine) * 1e3 / p.n;
	printf("%-50s %10.1f /s   (responses: %.1f/s, %.2f s)\n",
	       pass == 1 ? "plain client: status writes (ks_kube_patch)"
			 : "plain client again, right after the host's",
	       (ph->n - 1) / ((double)(ph->last - ph->first) / 1e9), live_pace_rate(&p),
	       (double)(p.t_end - p.t0) / 1e9);
	return (ph->n - 1) / ((double)(ph->last - ph->first) / 1e9);
}

/* Create->status latency of a phase: p50 and p99 in ms. */
static void phase_latency(const struct phase *ph, double *p50, double *p99)
{
	double *v = ks_xcalloc((size_t)ph->n, sizeof(double));
	size_t n = 0;

	for (int i = 0; i < ph->n; i++)
		if (ph->created[i] && ph->written[i])
			v[n++] = (double)(ph->written[i] - ph->created[i]) / 1e6;
	*p50 = live_pct(v, n, 50);
	*p99 = live_pct(v, n, 99);
	free(v);
}

static void host_figures(struct bench *b)
{
	struct ks_buf m;
	double reconciles, requests, cpu = live_proc_cpu(b->host);

	ks_buf_init(&m);
	if (live_scrape(&b->t, b->port, &m) != 0)
		printf("  (no /metrics from the host: see %s)\n", b->log);
	reconciles = live_metric_sum(m.data, "controller_runtime_reconcile_total");
	requests = live_metric_sum(m.data, "rest_client_requests_total");
	printf("\nkupenstack run, at the end (%d Widgets, %.0f reconciles):\n",
	       b->ph[PH_START].n + b->ph[PH_BURST].n + b->ph[PH_PACED].n + b->ph[PH_LIGHT].n,
	       reconciles);
	figure("RSS (VmRSS)", (double)live_proc_kib(b->host, "VmRSS") / 1024, "MiB");
	figure("  anonymous (RssAnon)", (double)live_proc_kib(b->host, "RssAnon") / 1024, "MiB");
	figure("  peak (VmHWM)", (double)live_proc_kib(b->host, "VmHWM") / 1024, "MiB");
	figure("  PSS (shared pages split among their users)",
	       (double)live_smaps_kib(b->host, "Pss") / 1024, "MiB");
	figure("CPU time (user + system)", cpu, "s");
	figure("CPU seconds per 1,000 reconciles", reconciles > 0 ? cpu * 1e3 / reconciles : 0,
	       "s");
	figure("API requests (rest_client_requests_total)", requests, "");
	figure("  per reconcile", reconciles > 0 ? requests / reconciles : 0, "");
	figure("queue wait, mean (workqueue_queue_duration)",
	       live_metric_mean_ms(m.data, "workqueue_queue_duration_seconds"), "ms");
	figure("work time, mean (workqueue_work_duration)",
	       live_metric_mean_ms(m.data, "workqueue_work_duration_seconds"), "ms");
	ks_buf_deinit(&m);
}

/* Widgets there before the host starts: from its start to every status written. */
static double run_start(struct bench *b)
{
	struct phase *ph = &b->ph[PH_START];
	double rate, cpu;

	if (!kt_until(&b->t, phase_over, ph, 300)) {
		printf("host: only %d of %d statuses written in 300 s (see %s)\n", ph->nwritten,
		       ph->n, b->log);
		return 0;
	}
	rate = ph->n > 1 ? (ph->n - 1) / ((double)(ph->last - ph->first) / 1e9) : 0;
	printf("\nkupenstack run --concurrency %d, %d Widgets there at its start:\n", b->k, b->n);
	figure("start -> first status written", (double)(ph->first - b->host_t0) / 1e6, "ms");
	figure("start -> every status written", (double)(ph->last - b->host_t0) / 1e6, "ms");
	figure("reconciles + status writes, first to last", rate, "/s");
	b->host_ms = live_proc_cpu(b->host) * 1e3 / ph->n; /* its start and LIST included */
	cpu = live_server_spent(&b->srv_start);
	if (cpu >= 0) {
		b->cold_server_ms = cpu * 1e3 / ph->n;
		figure("API server + etcd CPU per status written", b->cold_server_ms,
		       "ms (its list and watch included)");
	}
	return rate;
}

/* Widgets created while the host runs, at rate (0: as fast as 64 in flight go). */
static double run_creates(struct bench *b, int which, double rate)
{
	struct phase *ph = &b->ph[which];
	struct live_pace p = {
		.n = ph->n, .max_inflight = 64, .rate = rate, .issue = create_one, .data = b
	};
	double p50, p99, secs, all;

	b->creating = which;
	live_pace_run(&b->t, &p, 600);
	secs = (double)(p.t_end - p.t0) / 1e9;
	if (!kt_until(&b->t, phase_over, ph, 300))
		printf("host: only %d of %d statuses written in 300 s\n", ph->nwritten, ph->n);
	all = (double)(ph->last - p.t0) / 1e9;
	phase_latency(ph, &p50, &p99);
	if (rate > 0)
		printf("\n%d Widgets created at %.0f/s while it runs:\n", ph->n, rate);
	else
		printf("\n%d Widgets created at once (64 in flight) while it runs:\n", ph->n);
	printf("%-50s %10.1f /s   (%.2f s, %d failed)\n", "creates", live_pace_rate(&p), secs,
	       p.failed);
	printf("%-50s %10.2f s    (%.1f statuses/s)\n", "first create -> every status written", all,
	       ph->nwritten / all);
	figure("create -> status written, p50", p50, "ms");
	printf("%-50s %10.1f ms%s\n", "create -> status written, p99", p99,
	       rate == 300 ? "   (aim <= 250 at 300/s)" : "");
	return ph->nwritten / all;
}

static void phases_init(struct bench *b)
{
	static const char prefixes[NPHASES] = { 'r', 's', 'b', 'p', 'l' };

	for (int p = 0; p < NPHASES; p++) {
		b->ph[p].prefix[0] = prefixes[p];
		b->ph[p].n = p == PH_LIGHT ? KS_MAX(b->n / 4, 1) : b->n;
		b->ph[p].created = ks_xcalloc((size_t)b->n, sizeof(uint64_t));
		b->ph[p].written = ks_xcalloc((size_t)b->n, sizeof(uint64_t));
	}
}

/* The host's three runs; *cold and *burst get their statuses/s. */
/* Both namespaces filled and watched: the plain client's Widgets and those there
 * when the host starts. Returns 0 or -EIO. */
static int prepare(struct bench *b)
{
	double secs;

	kt_fresh_namespace(&b->t, b->ns_raw);
	kt_fresh_namespace(&b->t, b->ns);
	if (start_watch(b, 1, b->ns_raw) != 0 || start_watch(b, 0, b->ns) != 0 ||
	    live_create_widgets(&b->t, b->ns_raw, "r", b->n, 64, &secs) != 0 ||
	    live_create_widgets(&b->t, b->ns, "s", b->n, 64, NULL) != 0)
		return -EIO;
	figure("create the Widgets (64 in flight)", b->n / secs, "/s");
	return 0;
}

/* The plain client, the host on the Widgets there, the plain client again (so that
 * what others do to the server weighs on both alike), then the host on creates. */
static void run_all(struct bench *b)
{
	int rc;

	b->raw[0] = raw_rate(b, 1);
	if (start_host(b) != 0) {
		printf("could not start bin/kupenstack: run make\n");
		return;
	}
	b->cold = run_start(b);
	if (b->raw[0] > 0)
		b->raw[1] = raw_rate(b, 2);
	b->burst = run_creates(b, PH_BURST, 0);
	run_creates(b, PH_PACED, 300);
	run_creates(b, PH_LIGHT, 50); /* well under what the server takes: the host's own */
	host_figures(b);
	rc = stop_host(b);
	printf("%-50s %10d\n", "exit status after SIGTERM", rc);
	if (rc == 0)
		unlink(b->log);
}

/* The mean of the passes that ran. */
static double mean2(const double v[2])
{
	return v[1] > 0 ? (v[0] + v[1]) / 2 : v[0];
}

static void side_by_side(struct bench *b)
{
	double raw = mean2(b->raw), cold = b->cold, burst = b->burst;
	double server = mean2(b->raw_server_ms), client = mean2(b->raw_client_ms);

	printf("\nside by side, concurrency %d (raw: the mean of before and after):\n", b->k);
	printf("%-50s %10.1f /s   (%.1f before, %.1f after)\n", "raw status writes, plain client",
	       raw, b->raw[0], b->raw[1]);
	printf("%-50s %10.1f /s   (%.0f%% of raw; aim >= 90%%)\n",
	       "host: reconcile + status write, Widgets there", cold,
	       raw > 0 ? 100 * cold / raw : 0);
	printf("%-50s %10.1f /s   (%.0f%% of raw; the creates share the server)\n",
	       "host: create -> status written, all at once", burst,
	       raw > 0 ? 100 * burst / raw : 0);
	printf("%-50s %10.2f ms   (client %.2f + server %.2f)\n",
	       "CPU per status write: plain client", client + server, client, server);
	printf("%-50s %10.2f ms   (host %.2f + server %.2f)\n",
	       "CPU per status write: host's reconcile", b->host_ms + b->cold_server_ms, b->host_ms,
	       b->cold_server_ms);
	printf("  (server: the API server's and etcd's CPU over the run divided by the writes,\n"
	       "  so what others ask of it meanwhile counts too)\n");
}

static void loadavg(void)
{
	char buf[64] = "";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f && fgets(buf, sizeof(buf), f))
		printf("load average at the start: %.14s(%ld CPUs; others share the server)\n", buf,
		       sysconf(_SC_NPROCESSORS_ONLN));
	if (f)
		fclose(f);
}

int main(void)
{
	struct bench b = {
		.n = getenv("BENCH_N") ? atoi(getenv("BENCH_N")) : 1000,
		.k = getenv("BENCH_CONCURRENCY") ? atoi(getenv("BENCH_CONCURRENCY")) : 8,
	};

	b.n = KS_MAX(2, KS_MIN(b.n, 99999));
	b.k = KS_MAX(1, KS_MIN(b.k, 64));
	live_ns_name(b.ns, sizeof(b.ns), "bench-reconcile");
	live_ns_name(b.ns_raw, sizeof(b.ns_raw), "bench-raw");
	phases_init(&b);
	kt_init(&b.t, "KUBECONFIG");
	kt_ensure_crd(&b.t);
	printf("bench_reconcile: %d Widgets per run, concurrency %d, namespaces %s and %s\n", b.n,
	       b.k, b.ns_raw, b.ns);
	loadavg();
	live_server_mark(&b.srv_run);
	if (prepare(&b) == 0) {
		run_all(&b);
		side_by_side(&b);
	}
	if (live_server_restarted(&b.srv_run))
		printf("NOTE: the API server restarted during this run (another test?): the "
		       "figures above are not comparable\n");
	for (int w = 0; w < 2; w++)
		if (b.watch[w])
			ks_watch_free(b.watch[w]);
	kt_deinit(&b.t);
	for (int w = 0; w < 2; w++)
		ks_cache_free(b.cache[w]);
	fflush(stdout);
	/* not waited for: the namespace controller deletes one Widget at a time */
	live_delete_namespace(b.ns_raw, 0);
	live_delete_namespace(b.ns, 0);
	for (int p = 0; p < NPHASES; p++) {
		free(b.ph[p].created);
		free(b.ph[p].written);
	}
	return 0;
}
