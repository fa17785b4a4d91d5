/*
 * bench_watch_live.c: the reflector and cache against the live API server. 10,000
 * Widgets in a namespace of its own; then the time to LIST them (pages of 500),
 * decode them and fill the cache until synced; the process's RSS before and after,
 * per object, against the stripped JSON the cache holds; and watch event -> callback
 * latency, p50/p99, at idle (one write at a time) and at ~500 writes/s, the writes
 * coming from a second process on its own connection. The namespace is deleted at
 * the end (not waited for). BENCH_WATCH_N overrides the object count.
 * needs: kube
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "json.h"
#include "ks.h"
#include "live.h"
#include "watch.h"

#define IDLE_WRITES 500
#define IDLE_RATE 50.0 /* one at a time, 20 ms apart: each event lands before the next write */
#define LOAD_WRITES 2500
#define LOAD_RATE 500.0
#define LOAD_INFLIGHT 64

/* Per write, shared with the writer process: when it started and when its response
 * came back. */
struct stamp {
	uint64_t start, resp;
};

struct bench {
	struct kt t;
	char ns[64];
	int n;
	struct stamp *stamps; /* MAP_SHARED, IDLE_WRITES + LOAD_WRITES */
	uint64_t *seen;	      /* when the callback saw write seq, by seq */
	uint64_t *sent;	      /* the timestamp the write carried, by seq */
	uint64_t *host;	      /* ns from the socket turning readable to the callback, by seq */
	int received;
	bool synced;
	uint64_t synced_ns;
	/* Where the loop stood before its last poll: to tell when the poll returned. */
	uv_prepare_t prepare;
	uint64_t prep_ns, prep_idle;
};

static void figure(const char *what, double v, const char *unit)
{
	printf("%-48s %12.1f %s\n", what, v, unit);
}

static void before_poll(uv_prepare_t *h)
{
	struct bench *b = h->data;

	b->prep_ns = uv_hrtime();
	b->prep_idle = uv_metrics_idle_time(h->loop);
}

/* When the loop's current poll returned: the time it blocked (libuv's idle-time
 * metric) after the last prepare. So now minus this is what the host spent on the
 * data: TLS, libcurl, the decoder, the cache, up to the handler. */
static uint64_t poll_returned(struct bench *b)
{
	return b->prep_ns + (uv_metrics_idle_time(&b->t.loop) - b->prep_idle);
}

/* The cache's update handler: note when write seq ("seq:sent_ns" in spec.blob) arrived. */
static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *data)
{
	uint64_t now = ks_now_ns();
	struct bench *b = data;
	const char *p = memmem(o->json, o->len, "\"blob\":\"", 8);
	char *end;
	long seq;

	(void)old;
	if (!p)
		return;
	seq = strtol(p + 8, &end, 10);
	if (*end != ':' || seq < 0 || seq >= IDLE_WRITES + LOAD_WRITES || b->seen[seq])
		return;
	b->seen[seq] = now;
	b->host[seq] = uv_hrtime() - poll_returned(b);
	b->sent[seq] = strtoull(end + 1, NULL, 10);
	b->received++;
}

static void on_synced(struct ks_watch *w, void *data)
{
	struct bench *b = data;

	(void)w;
	if (!b->synced)
		b->synced_ns = ks_now_ns();
	b->synced = true;
}

static bool is_synced(void *data)
{
	return ((struct bench *)data)->synced;
}

/* The writer process: patches spec.blob of widget (seq mod n) to "seq:now". */
struct writer {
	struct kt t;
	struct bench *b;
	int base;
};

struct write_call {
	struct live_pace *p;
	int seq;
};

static void patched_one(struct ks_kube_result *res, void *data)
{
	struct write_call *c = data;
	struct writer *w = c->p->data;

	w->b->stamps[c->seq].resp = ks_now_ns();
	live_pace_done(c->p, ks_kube_ok(res));
	free(c);
}

static void write_one(struct live_pace *p, int i)
{
	struct writer *w = p->data;
	struct write_call *c = ks_xmalloc(sizeof(*c));
	int seq = w->base + i;
	char name[32], blob[64];
	cJSON *patch = cJSON_CreateObject();

	snprintf(name, sizeof(name), "w-%05d", seq % w->b->n);
	w->b->stamps[seq].start = ks_now_ns();
	snprintf(blob, sizeof(blob), "%d:%llu", seq, (unsigned long long)w->b->stamps[seq].start);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(patch, "spec"), "blob", blob);
	c->p = p;
	c->seq = seq;
	ks_kube_patch(w->t.kube, &kt_widgets, w->b->ns, name, NULL, KS_PATCH_MERGE, patch,
		      patched_one, c);
	cJSON_Delete(patch);
}

/* Child process: count writes from seq base at rate, max_inflight at once. Prints
 * the achieved rate on fd out as "rate failed\n". */
static void writer_main(struct bench *b, int base, int count, double rate, int max_inflight,
			int out)
{
	struct writer w = { .b = b, .base = base };
	struct live_pace p = { .n = count,
			       .max_inflight = max_inflight,
			       .rate = rate,
			       .issue = write_one,
			       .data = &w };
	char line[64];
	int len;

	kt_init(&w.t, "KUBECONFIG");
	live_pace_run(&w.t, &p, 120);
	len = snprintf(line, sizeof(line), "%.1f %d\n", live_pace_rate(&p), p.failed);
	if (write(out, line, (size_t)len) != len)
		_exit(1);
	_exit(0);
}

struct waiting {
	struct bench *b;
	pid_t pid;
	int want, status;
	uint64_t exited;
};

static bool writes_seen(void *data)
{
	struct waiting *w = data;

	if (!w->exited && waitpid(w->pid, &w->status, WNOHANG) == w->pid)
		w->exited = ks_now_ns();
	/* all seen, or the writer gone for 5 s (what it wrote and we missed is lost) */
	return (w->exited && w->b->received >= w->want) ||
	       (w->exited && ks_now_ns() - w->exited > 5000000000ull);
}

static void poke(uv_timer_t *t)
{
	(void)t; /* only wakes the loop so that writes_seen() is asked again */
}

struct lat {
	double p50, p99, max, rtt50, rtt99, host50, host99, before_resp, rate;
	int seen, failed;
};

/* Run one writer process and collect what the cache saw of its writes. */
static int measure(struct bench *b, int base, int count, double rate, int inflight, struct lat *out)
{
	struct waiting w = { .b = b, .want = b->received + count };
	double *lat = ks_xcalloc((size_t)count, sizeof(double));
	double *rtt = ks_xcalloc((size_t)count, sizeof(double));
	double *host = ks_xcalloc((size_t)count, sizeof(double));
	char line[64] = "";
	uv_timer_t tick;
	int fds[2], n = 0, nr = 0, early = 0;

	if (pipe(fds) != 0)
		return -errno;
	fflush(stdout);
	w.pid = fork();
	if (w.pid == 0) {
		close(fds[0]);
		writer_main(b, base, count, rate, inflight, fds[1]);
	}
	close(fds[1]);
	uv_timer_init(&b->t.loop, &tick);
	uv_timer_start(&tick, poke, 50, 50);
	kt_until(&b->t, writes_seen, &w, 180);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&b->t.loop, UV_RUN_NOWAIT);
	if (read(fds[0], line, sizeof(line) - 1) <= 0 ||
	    sscanf(line, "%lf %d", &out->rate, &out->failed) != 2)
		out->rate = 0, out->failed = count;
	close(fds[0]);
	for (int s = base; s < base + count; s++) {
		if (b->stamps[s].resp)
			rtt[nr++] = (double)(b->stamps[s].resp - b->stamps[s].start) / 1e6;
		if (!b->seen[s])
			continue;
		host[n] = (double)b->host[s] / 1e6;
		lat[n++] = (double)(b->seen[s] - b->sent[s]) / 1e6;
		early += b->stamps[s].resp && b->seen[s] < b->stamps[s].resp;
	}
	out->seen = n;
	out->p50 = live_pct(lat, (size_t)n, 50);
	out->p99 = live_pct(lat, (size_t)n, 99);
	out->max = n ? lat[n - 1] : 0;
	out->rtt50 = live_pct(rtt, (size_t)nr, 50);
	out->rtt99 = live_pct(rtt, (size_t)nr, 99);
	out->before_resp = n ? 100.0 * early / n : 0;
	out->host50 = live_pct(host, (size_t)n, 50);
	out->host99 = live_pct(host, (size_t)n, 99);
	free(host);
	free(lat);
	free(rtt);
	return 0;
}

static void print_lat(const char *what, const struct lat *l, int count)
{
	printf("%-22s %7.2f %7.2f %7.2f %7.2f %7.2f %7.3f %7.3f %6.0f %5d/%-5d %3.0f%%\n", what,
	       l->p50, l->p99, l->max, l->rtt50, l->rtt99, l->host50, l->host99, l->rate, l->seen,
	       count, l->before_resp);
}

/* Fill the namespace, in a child process so that none of it shows in our RSS. */
static int populate(struct bench *b)
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct kt t;
		double secs = 0;
		int failed;

		kt_init(&t, "KUBECONFIG");
		kt_ensure_crd(&t);
		kt_fresh_namespace(&t, b->ns);
		failed = live_create_widgets(&t, b->ns, "w", b->n, 64, &secs);
		printf("%-48s %12.1f s    (%.0f/s, 64 in flight, %d failed)\n",
		       "create the Widgets (ks_kube_create)", secs, b->n / secs, failed);
		fflush(stdout);
		_exit(failed ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static double mib(long kib)
{
	return (double)kib / 1024;
}

/* What the process holds at one moment. */
struct mem {
	long rss, anon, file, hwm, pss; /* KiB */
	size_t heap, kept;		/* mallinfo2: in use, and free but kept by malloc */
	double cpu;			/* CPU seconds so far */
};

static void mem_now(struct mem *m)
{
	struct mallinfo2 mi = mallinfo2();

	m->rss = live_proc_kib(0, "VmRSS");
	m->anon = live_proc_kib(0, "RssAnon");
	m->file = live_proc_kib(0, "RssFile");
	m->hwm = live_proc_kib(0, "VmHWM");
	m->pss = live_smaps_kib(0, "Pss");
	m->heap = mi.uordblks;
	m->kept = mi.fordblks;
	m->cpu = live_proc_cpu(0);
}

/* The same LIST alone, without the cache: the network's and JSON parse's share. */
static double list_alone(struct bench *b)
{
	struct kt_res r = { 0 };
	uint64_t t0 = ks_now_ns();

	ks_kube_list(b->t.kube, &kt_widgets, b->ns, &(struct ks_kube_list_opts){ .limit = 500 },
		     kt_store, &r);
	kt_wait(&b->t, &r, 300);
	kt_res_clear(&r);
	return (double)(ks_now_ns() - t0) / 1e6;
}

/* m0 idle, m1 synced, m2 synced and trimmed. */
static void print_sync(struct bench *b, struct ks_cache *c, double ms, double alone_ms,
		       const struct mem *m0, const struct mem *m1, const struct mem *m2)
{
	double json = (double)ks_cache_json_bytes(c);

	figure("LIST (pages of 500) + decode + cache, to synced", ms, "ms");
	figure("  per object", ms * 1e3 / b->n, "us");
	figure("  our CPU time in it (user + system)", (m1->cpu - m0->cpu) * 1e3, "ms");
	figure("  the LIST + parse alone, no cache (ks_kube_list)", alone_ms, "ms");
	printf("%-48s %12zu\n", "objects cached", ks_cache_len(c));
	figure("RSS idle, before the cache (client up, TLS on)", mib(m0->rss), "MiB  (aim <= 8)");
	figure("  of which anonymous (heap, stacks)", mib(m0->anon), "MiB");
	figure("  of which file-backed (libcrypto, libcurl, ...)", mib(m0->file), "MiB");
	figure("PSS idle (shared pages split among their users)", mib(m0->pss), "MiB");
	figure("RSS synced", mib(m1->rss), "MiB");
	figure("  free heap malloc keeps (mallinfo2 fordblks)", (double)m1->kept / 1048576, "MiB");
	figure("RSS synced, after malloc_trim(0)", mib(m2->rss), "MiB");
	figure("RSS peak during the sync (VmHWM)", mib(m1->hwm), "MiB");
	figure("RSS growth per object (synced - idle)", (double)(m1->rss - m0->rss) * 1024 / b->n,
	       "B");
	figure("RSS growth per object, after trim", (double)(m2->rss - m0->rss) * 1024 / b->n, "B");
	figure("heap in use per object (mallinfo2)", (double)(m1->heap - m0->heap) / b->n, "B");
	figure("stripped JSON held per object", json / b->n, "B");
	printf("%-48s %12.2f x    (aim <= 1.3)\n", "RSS growth / stripped JSON",
	       (double)(m1->rss - m0->rss) * 1024 / json);
	printf("%-48s %12.2f x\n", "RSS growth after trim / stripped JSON",
	       (double)(m2->rss - m0->rss) * 1024 / json);
	printf("%-48s %12.2f x\n", "heap in use / stripped JSON",
	       (double)(m1->heap - m0->heap) / json);
}

/* LIST + decode + cache until synced, and the memory it takes. */
static struct ks_watch *sync_cache(struct bench *b, struct ks_cache *c)
{
	struct kt_res r = { 0 };
	struct mem m0, m1, m2;
	uint64_t t0;
	struct ks_watch *w;

	ks_kube_request(b->t.kube, "GET", "/version", NULL, NULL, kt_store, &r);
	kt_wait(&b->t, &r, 30); /* TLS and libcurl warmed up: the idle host */
	kt_res_clear(&r);
	mem_now(&m0);
	w = ks_watch_new(&b->t.loop, b->t.kube, c,
			 &(struct ks_watch_opts){ .res = kt_widgets,
						  .namespace = b->ns,
						  .page_size = 500,
						  .on_synced = on_synced,
						  .data = b });
	t0 = ks_now_ns();
	ks_watch_start(w);
	if (!kt_until(&b->t, is_synced, b, 300)) {
		fprintf(stderr, "bench_watch_live: not synced within 300 s\n");
		return w;
	}
	mem_now(&m1);
	malloc_trim(0);
	mem_now(&m2);
	print_sync(b, c, (double)(b->synced_ns - t0) / 1e6, list_alone(b), &m0, &m1, &m2);
	return w;
}

static void latency(struct bench *b)
{
	struct lat idle = { 0 }, load = { 0 };

	measure(b, 0, IDLE_WRITES, IDLE_RATE, 1, &idle);
	measure(b, IDLE_WRITES, LOAD_WRITES, LOAD_RATE, LOAD_INFLIGHT, &load);
	printf("\nwatch event -> cache callback, from a write by a second process (ms):\n");
	printf("%-22s %23s %15s %15s\n", "", "write -> callback", "write's PATCH", "host's share");
	printf("%-22s %7s %7s %7s %7s %7s %7s %7s %6s %11s %4s\n", "", "p50", "p99", "max", "p50",
	       "p99", "p50", "p99", "wr/s", "seen", "early");
	print_lat("idle (one at a time)", &idle, IDLE_WRITES);
	print_lat("under load (500/s aim)", &load, LOAD_WRITES);
	printf("  write -> callback: from the write's start (the timestamp it carries) to our\n"
	       "  cache's on_update; write's PATCH: its round trip as the writer saw it;\n"
	       "  host's share: from our poll returning with the event's bytes to on_update\n"
	       "  (TLS, libcurl, decoder, cache); wr/s: the writes the API server took;\n"
	       "  early: callbacks before the writer had its response. (aim: p99 <= 5 ms)\n");
}

int main(void)
{
	struct bench b = { .n = getenv("BENCH_WATCH_N") ? atoi(getenv("BENCH_WATCH_N")) : 10000 };
	size_t total = IDLE_WRITES + LOAD_WRITES;
	struct ks_cache *c;
	struct ks_watch *w;
	struct live_server srv;

	if (b.n < LOAD_WRITES)
		b.n = LOAD_WRITES;
	live_ns_name(b.ns, sizeof(b.ns), "bench-watch");
	b.stamps = mmap(NULL, total * sizeof(*b.stamps), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ks_require(b.stamps != MAP_FAILED);
	printf("bench_watch_live: %d Widgets in namespace %s\n", b.n, b.ns);
	live_server_mark(&srv);
	if (populate(&b) != 0) {
		fprintf(stderr, "bench_watch_live: could not create the Widgets\n");
		live_delete_namespace(b.ns, 300);
		return 1;
	}
	kt_init(&b.t, "KUBECONFIG");
	b.seen = ks_xcalloc(total, sizeof(*b.seen));
	b.sent = ks_xcalloc(total, sizeof(*b.sent));
	b.host = ks_xcalloc(total, sizeof(*b.host));
	uv_loop_configure(&b.t.loop, UV_METRICS_IDLE_TIME);
	uv_prepare_init(&b.t.loop, &b.prepare);
	b.prepare.data = &b;
	uv_prepare_start(&b.prepare, before_poll);
	c = ks_cache_new();
	ks_cache_add_handler(c, &(struct ks_cache_handler){ .on_update = on_update, .data = &b });
	w = sync_cache(&b, c);
	if (b.synced)
		latency(&b);
	ks_watch_free(w);
	ks_cache_free(c);
	uv_close((uv_handle_t *)&b.prepare, NULL);
	kt_deinit(&b.t);
	/* The namespace controller takes about a minute for 10,000 Widgets (one at a
	 * time): not waited for; make bench runs this after bench_reconcile. */
	live_delete_namespace(b.ns, 0);
	printf("%-48s %12s\n", "namespace deletion", "started");
	if (live_server_restarted(&srv))
		printf("NOTE: the API server restarted during this run (another test?): the "
		       "figures above are not comparable\n");
	free(b.seen);
	free(b.sent);
	free(b.host);
	munmap(b.stamps, total * sizeof(*b.stamps));
	return 0;
}
