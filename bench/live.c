/* live.c: the pacer, Widgets, percentiles and /proc readers of the live benchmarks. */
#include "live.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "ks.h"

static void pace_fill(struct live_pace *p)
{
	int due = p->n, cap = p->max_inflight ? p->max_inflight : 1;

	if (p->rate > 0)
		due = KS_MIN(p->n, (int)((double)(ks_now_ns() - p->t0) / 1e9 * p->rate) + 1);
	while (p->issued < due && p->inflight < cap) {
		p->inflight++;
		p->issue(p, p->issued++);
	}
}

static void on_tick(uv_timer_t *tm)
{
	pace_fill(tm->data);
}

void live_pace_done(struct live_pace *p, bool ok)
{
	p->inflight--;
	p->done++;
	p->failed += !ok;
	p->t_end = ks_now_ns();
	if (p->issued < p->n)
		pace_fill(p);
}

double live_pace_rate(const struct live_pace *p)
{
	return p->t_end > p->t0 ? (double)p->done / ((double)(p->t_end - p->t0) / 1e9) : 0;
}

static bool pace_over(void *data)
{
	struct live_pace *p = data;

	return p->done == p->n;
}

int live_pace_run(struct kt *t, struct live_pace *p, double seconds)
{
	bool ok;

	p->t = t;
	p->issued = p->done = p->failed = p->inflight = 0;
	p->t0 = p->t_end = ks_now_ns();
	uv_timer_init(&t->loop, &p->tick);
	p->tick.data = p;
	if (p->rate > 0) /* libuv timers tick in ms: top up every ms */
		uv_timer_start(&p->tick, on_tick, 1, 1);
	pace_fill(p);
	ok = kt_until(t, pace_over, p, seconds);
	uv_close((uv_handle_t *)&p->tick, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	return ok ? 0 : -ETIMEDOUT;
}

cJSON *live_widget(const char *ns, const char *prefix, int i)
{
	char name[64];
	cJSON *o, *labels, *spec;

	snprintf(name, sizeof(name), "%s-%05d", prefix, i);
	o = kt_widget(ns, name, i % 1000);
	labels = cJSON_AddObjectToObject(cJSON_GetObjectItem(o, "metadata"), "labels");
	cJSON_AddStringToObject(labels, "app.kubernetes.io/name", "bench");
	cJSON_AddStringToObject(labels, "tier", i % 2 ? "odd" : "even");
	spec = cJSON_GetObjectItem(o, "spec");
	cJSON_AddStringToObject(spec, "color", "blue");
	return o;
}

struct creating {
	struct kt *t;
	const char *ns, *prefix;
};

static void created(struct ks_kube_result *res, void *data)
{
	struct live_pace *p = data;

	if (!ks_kube_ok(res) && res->code != 409 && p->failed < 3)
		fprintf(stderr, "create: %ld %s: %s\n", res->code, res->reason, res->message);
	live_pace_done(p, ks_kube_ok(res) || res->code == 409);
}

static void create_one(struct live_pace *p, int i)
{
	struct creating *c = p->data;
	cJSON *o = live_widget(c->ns, c->prefix, i);

	ks_kube_create(c->t->kube, &kt_widgets, c->ns, o, created, p);
	cJSON_Delete(o);
}

int live_create_widgets(struct kt *t, const char *ns, const char *prefix, int n, int max_inflight,
			double *secs)
{
	struct creating c = { t, ns, prefix };
	struct live_pace p = {
		.n = n, .max_inflight = max_inflight, .issue = create_one, .data = &c
	};

	if (live_pace_run(t, &p, 600) != 0)
		return n - p.done + p.failed;
	if (secs)
		*secs = (double)(p.t_end - p.t0) / 1e9;
	return p.failed;
}

static void deleted(struct ks_kube_result *res, void *data)
{
	struct live_pace *p = data;

	live_pace_done(p, ks_kube_ok(res) || res->code == 404);
}

static void delete_one(struct live_pace *p, int i)
{
	struct creating *c = p->data;
	char name[64];

	snprintf(name, sizeof(name), "%s-%05d", c->prefix, i);
	ks_kube_delete(c->t->kube, &kt_widgets, c->ns, name, NULL, deleted, p);
}

int live_delete_widgets(struct kt *t, const char *ns, const char *prefix, int n, int max_inflight,
			double *secs)
{
	struct creating c = { t, ns, prefix };
	struct live_pace p = {
		.n = n, .max_inflight = max_inflight, .issue = delete_one, .data = &c
	};

	if (live_pace_run(t, &p, 600) != 0)
		return n - p.done + p.failed;
	if (secs)
		*secs = (double)(p.t_end - p.t0) / 1e9;
	return p.failed;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double live_pct(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p / 100.0 * (double)n + 0.5);
	return v[i == 0 ? 0 : KS_MIN(i, n) - 1];
}

static long proc_kib(pid_t pid, const char *file, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kib = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kib = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

long live_proc_kib(pid_t pid, const char *field)
{
	return proc_kib(pid, "status", field);
}

long live_smaps_kib(pid_t pid, const char *field)
{
	return proc_kib(pid, "smaps_rollup", field);
}

double live_proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/self/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static pid_t cluster_pid(const char *name)
{
	const char *dir = getenv("KS_KUBE_DIR");
	char path[512];
	int pid = 0;
	FILE *f;

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

static double server_cpu(pid_t api, pid_t etcd)
{
	double a = api ? live_proc_cpu(api) : -1, e = etcd ? live_proc_cpu(etcd) : -1;

	return a < 0 || e < 0 ? -1 : a + e;
}

void live_server_mark(struct live_server *s)
{
	s->api = cluster_pid("apiserver");
	s->etcd = cluster_pid("etcd");
	s->cpu = server_cpu(s->api, s->etcd);
}

bool live_server_restarted(const struct live_server *s)
{
	return s->api && cluster_pid("apiserver") != s->api;
}

double live_server_spent(const struct live_server *s)
{
	double now;

	if (s->cpu < 0 || live_server_restarted(s) || cluster_pid("etcd") != s->etcd)
		return -1;
	now = server_cpu(s->api, s->etcd);
	return now < s->cpu ? -1 : now - s->cpu;
}

int live_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

struct scrape {
	bool done, ok;
	struct ks_buf *out;
};

static void scraped(struct ks_http_req *req, const struct ks_http_resp *resp, void *data)
{
	struct scrape *s = data;

	(void)req;
	s->ok = resp->status == 200;
	if (s->ok)
		ks_buf_append(s->out, resp->body.data, resp->body.len);
	s->done = true;
}

static bool scrape_done(void *data)
{
	return ((struct scrape *)data)->done;
}

int live_scrape(struct kt *t, int port, struct ks_buf *out)
{
	struct scrape s = { .out = out };
	char url[64];
	struct ks_http_req *req;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	req = ks_http_request(
		t->http, &(struct ks_http_opts){
				 .url = url, .timeout_ms = 10000, .on_done = scraped, .data = &s });
	if (!kt_until(t, scrape_done, &s, 15) && req)
		ks_http_cancel(req);
	return s.ok ? 0 : -EIO;
}

double live_metric_sum(const char *text, const char *name)
{
	size_t len = strlen(name);
	double sum = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, name, len) == 0 && (l[len] == '{' || l[len] == ' ')) {
			const char *v = l[len] == ' ' ? l + len : strchr(l, '}');

			if (v)
				sum += strtod(v + 1, NULL);
		}
	}
	return sum;
}

double live_metric_mean_ms(const char *text, const char *name)
{
	char sum[128], count[128];

	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	return 1e3 * live_metric_sum(text, sum) / KS_MAX(1, live_metric_sum(text, count));
}

void live_ns_name(char *out, size_t cap, const char *base)
{
	snprintf(out, cap, "%s-%d", base, (int)getpid());
}

void live_delete_namespace(const char *ns, int seconds)
{
	if (seconds > 0)
		kt_sh("kubectl delete namespace %s --ignore-not-found --wait=true --timeout=%ds "
		      ">/dev/null 2>&1",
		      ns, seconds);
	else
		kt_sh("kubectl delete namespace %s --ignore-not-found --wait=false >/dev/null 2>&1",
		      ns);
}
