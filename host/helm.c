/*
 * helm.c: `helm template` on the loop: the values file and the chart digest (chart.c) on
 * the thread pool, helm as a child process (proc.c), and the LRU cache of renders.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helm.h"
#include "chart.h"
#include "ks.h"
#include "list.h"
#include "proc.h"
#include "yaml.h"

#define MAX_OUTPUT (64u << 20) /* bytes helm may print */
#define MAX_STDERR (16u << 10) /* the end of stderr kept for messages */
#define TAIL_LINES 5	       /* lines of stderr in a message */
#define DEFAULT_TIMEOUT 60.0

enum state {
	DIGEST, /* on the thread pool */
	RUN,	/* helm runs (or its handles close) */
};

struct ks_helm_req {
	uv_loop_t *loop;
	ks_helm_cb cb;
	void *data;
	enum state state;
	bool cancelled, finished;
	char *chart, *values, *tmpdir;
	char **argv; /* NULL-terminated; one free slot at the end for --values= */
	size_t argc;
	char *key; /* the cache key, but the digest */
	uint64_t timeout_ms;
	/* The digest step, on the thread pool. */
	uv_work_t work;
	char digest[KS_CHART_DIGEST_LEN + 1];
	int work_err;
	bool values_failed;
	char tmpfile[PATH_MAX]; /* "" when none */
	struct ks_proc *proc;	/* helm, while it runs */
};

/* The cache: most recently used first. */
struct entry {
	struct ks_list lru; /* in cache.lru */
	char digest[KS_CHART_DIGEST_LEN + 1];
	char *key;
	cJSON *objects;
};

static struct {
	struct ks_list lru; /* most recently used first */
	struct ks_helm_stats stats;
} cache = { .lru = { &cache.lru, &cache.lru } };

static int write_values(struct ks_helm_req *r)
{
	size_t len = strlen(r->values), off = 0;
	int fd, rc = 0;
	ssize_t n;

	snprintf(r->tmpfile, sizeof(r->tmpfile), "%s/ks-helm-values-XXXXXX", r->tmpdir);
	fd = mkostemp(r->tmpfile, O_CLOEXEC);
	if (fd < 0) {
		r->tmpfile[0] = '\0';
		return -errno;
	}
	while (off < len) {
		n = write(fd, r->values + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && !rc)
		rc = -errno;
	return rc;
}

static void work(uv_work_t *w)
{
	struct ks_helm_req *r = w->data;

	r->work_err = ks_chart_digest(r->chart, r->digest);
	if (!r->work_err && r->values) {
		r->work_err = write_values(r);
		r->values_failed = r->work_err != 0;
	}
}

/* --- the cache ------------------------------------------------------------------- */

static void unlink_entry(struct entry *e)
{
	ks_list_del(&e->lru);
	cache.stats.entries--;
}

static void push_front(struct entry *e)
{
	ks_list_add(&cache.lru, &e->lru);
	cache.stats.entries++;
}

static void free_entry(struct entry *e)
{
	cJSON_Delete(e->objects);
	free(e->key);
	free(e);
}

static struct entry *cache_find(const char *digest, const char *key)
{
	struct ks_list *l, *nx;
	struct entry *found = NULL;

	ks_list_foreach_safe(l, nx, &cache.lru) {
		struct entry *e = KS_CONTAINER_OF(l, struct entry, lru);

		if (!strcmp(e->digest, digest) && !strcmp(e->key, key)) {
			found = e;
			break;
		}
	}
	if (found) {
		unlink_entry(found);
		push_front(found);
	}
	return found;
}

/* Keep objects (owned from now on) as the render of digest + key. */
static void cache_put(const char *digest, const char *key, cJSON *objects)
{
	struct entry *e = cache_find(digest, key);

	if (e) { /* an identical render finished meanwhile */
		cJSON_Delete(e->objects);
		e->objects = objects;
		return;
	}
	e = ks_xcalloc(1, sizeof(*e));
	memcpy(e->digest, digest, sizeof(e->digest));
	e->key = ks_xstrdup(key);
	e->objects = objects;
	push_front(e);
	while (cache.stats.entries > KS_HELM_CACHE_SIZE) {
		struct entry *old = KS_CONTAINER_OF(ks_list_last(&cache.lru), struct entry, lru);

		unlink_entry(old);
		free_entry(old);
	}
}

void ks_helm_cache_clear(void)
{
	while (!ks_list_empty(&cache.lru)) {
		struct entry *e = KS_CONTAINER_OF(ks_list_first(&cache.lru), struct entry, lru);

		unlink_entry(e);
		free_entry(e);
	}
}

void ks_helm_stats(struct ks_helm_stats *out)
{
	*out = cache.stats;
}

/* --- the request ----------------------------------------------------------------- */

static void req_free(struct ks_helm_req *r)
{
	size_t i;

	for (i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	free(r->chart);
	free(r->values);
	free(r->tmpdir);
	free(r->key);
	free(r);
}

static void remove_tmpfile(struct ks_helm_req *r)
{
	if (r->tmpfile[0])
		unlink(r->tmpfile);
	r->tmpfile[0] = '\0';
}

/* The last TAIL_LINES non-empty lines of stderr, after a newline; "" when none. */
static char *stderr_tail(const struct ks_buf *err)
{
	const char *s = err && err->data ? err->data : "";
	const char *end = s + (err ? err->len : 0), *p;
	int lines = 0;

	while (end > s && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	p = end;
	while (p > s && lines < TAIL_LINES) {
		p--;
		if (*p == '\n' && p + 1 < end && p[1] != '\n')
			lines++;
	}
	if (lines == TAIL_LINES)
		p++;
	while (p < end && *p == '\n')
		p++;
	return p < end ? ks_xasprintf("\n%.*s", (int)(end - p), p) : ks_xstrdup("");
}

/* Report err; pr is helm's result when it ran, else NULL. Takes line. */
static void report_error(struct ks_helm_req *r, const struct ks_proc_result *pr, int err,
			 const char *reason, char *line)
{
	char *tail = stderr_tail(pr ? pr->err : NULL), *msg = ks_xasprintf("%s%s", line, tail);
	struct ks_helm_result res = { .err = err, .reason = reason, .message = msg };

	if (pr && !pr->timed_out && !pr->signal)
		res.status = (int)pr->status;
	cache.stats.failures++;
	r->cb(&res, r->data);
	free(tail);
	free(msg);
	free(line);
}

static void report(struct ks_helm_req *r, const struct ks_proc_result *pr)
{
	struct ks_helm_result res = { 0 };
	const struct ks_buf *out = pr->out;
	char *perr = NULL;
	cJSON *objects;

	if (pr->too_big)
		return report_error(
			r, pr, -EFBIG, "OutputTooLarge",
			ks_xasprintf("helm template printed more than %u MiB", MAX_OUTPUT >> 20));
	if (pr->timed_out)
		return report_error(
			r, pr, -ETIMEDOUT, "Timeout",
			ks_xasprintf("helm template timed out after %g s and was killed",
				     (double)r->timeout_ms / 1000));
	if (pr->signal)
		return report_error(
			r, pr, -EIO, "HelmFailed",
			ks_xasprintf("helm template was killed by signal %d", pr->signal));
	if (pr->status)
		return report_error(
			r, pr, -EIO, "HelmFailed",
			ks_xasprintf("helm template exited with status %d", (int)pr->status));
	objects = ks_yaml_parse_all(out->data ? out->data : "", out->len, &perr);
	if (!objects) {
		report_error(r, pr, -EBADMSG, "ParseError",
			     ks_xasprintf("could not parse helm's output: %s", perr ? perr : "?"));
		free(perr);
		return;
	}
	cache_put(r->digest, r->key, objects);
	res.objects = objects;
	r->cb(&res, r->data);
}

/* helm was reaped and its pipes are at their end (never after ks_helm_cancel). */
static void on_helm_done(const struct ks_proc_result *pr, void *data)
{
	struct ks_helm_req *r = data;

	r->finished = true;
	r->proc = NULL;
	remove_tmpfile(r);
	report(r, pr);
	req_free(r);
}

static void spawn(struct ks_helm_req *r)
{
	struct ks_proc_opts po = { .argv = r->argv,
				   .timeout_ms = r->timeout_ms,
				   .max_output = MAX_OUTPUT,
				   .max_stderr = MAX_STDERR };
	int rc;

	r->state = RUN;
	if (r->tmpfile[0])
		r->argv[r->argc++] = ks_xasprintf("--values=%s", r->tmpfile);
	rc = ks_proc_start(r->loop, &po, on_helm_done, r, &r->proc);
	if (rc) {
		r->finished = true;
		remove_tmpfile(r);
		report_error(r, NULL, -ENOENT, "SpawnError",
			     ks_xasprintf("could not run %s: %s", r->argv[0], uv_strerror(rc)));
		req_free(r);
		return;
	}
	cache.stats.runs++;
}

static void after_work(uv_work_t *w, int status)
{
	struct ks_helm_req *r = w->data;
	struct ks_helm_result res = { .cached = true };
	struct entry *e;

	if (r->cancelled || status != 0) {
		remove_tmpfile(r);
		req_free(r);
		return;
	}
	if (r->work_err) {
		remove_tmpfile(r);
		report_error(r, NULL, r->work_err, "ChartError",
			     ks_xasprintf(r->values_failed ? "could not write the values to %s: %s"
							   : "could not read chart %s: %s",
					  r->values_failed ? r->tmpdir : r->chart,
					  r->work_err == -EFBIG ? "more than 10000 files or 256 MiB"
								: strerror(-r->work_err)));
		req_free(r);
		return;
	}
	e = cache_find(r->digest, r->key);
	if (!e)
		return spawn(r);
	cache.stats.hits++;
	remove_tmpfile(r);
	res.objects = e->objects;
	r->cb(&res, r->data);
	req_free(r);
}

/* --- starting ------------------------------------------------------------------- */

static bool release_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 53 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

const char *ks_helm_check(const struct ks_helm_opts *o)
{
	if (!o->chart || !o->chart[0])
		return "the chart must be a path to a chart directory or .tgz";
	if (o->release && !release_ok(o->release))
		return "the release name must be 1 to 53 lowercase letters, digits and '-', "
		       "starting and ending with a letter or digit";
	return NULL;
}

static void add_arg(struct ks_helm_req *r, char *arg, struct ks_buf *key)
{
	r->argv[r->argc++] = arg;
	ks_buf_printf(key, "%zu:%s;", strlen(arg), arg);
}

/* argv, but --values=, and the cache key text. */
static void build_args(struct ks_helm_req *r, const struct ks_helm_opts *o)
{
	const char *helm = o->helm, *env = getenv("KS_HELM");
	size_t napi = 0;
	struct ks_buf key;

	while (o->api_versions && o->api_versions[napi])
		napi++;
	r->argv = ks_xcalloc(9 + napi, sizeof(*r->argv));
	ks_buf_init(&key);
	add_arg(r, ks_xstrdup(helm ? helm : env && env[0] ? env : "helm"), &key);
	add_arg(r, ks_xstrdup("template"), &key);
	add_arg(r, ks_xstrdup(o->release ? o->release : "kupenstack"), &key);
	/* "./" keeps a relative path from passing for a flag or a repository name. */
	add_arg(r, ks_xasprintf("%s%s", o->chart[0] == '/' ? "" : "./", o->chart), &key);
	if (o->namespace)
		add_arg(r, ks_xasprintf("--namespace=%s", o->namespace), &key);
	if (o->kube_version)
		add_arg(r, ks_xasprintf("--kube-version=%s", o->kube_version), &key);
	for (size_t i = 0; i < napi; i++)
		add_arg(r, ks_xasprintf("--api-versions=%s", o->api_versions[i]), &key);
	if (o->include_crds)
		add_arg(r, ks_xstrdup("--include-crds"), &key);
	ks_buf_printf(&key, "values=%s", o->values ? o->values : "-");
	r->key = ks_buf_steal(&key);
}

struct ks_helm_req *ks_helm_render(uv_loop_t *loop, const struct ks_helm_opts *o, ks_helm_cb cb,
				   void *data)
{
	const char *tmpdir = getenv("TMPDIR");
	struct ks_helm_req *r;

	if (ks_helm_check(o))
		return NULL;
	r = ks_xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->cb = cb;
	r->data = data;
	r->state = DIGEST;
	r->chart = ks_xstrdup(o->chart);
	r->values = o->values ? ks_xstrdup(o->values) : NULL;
	r->tmpdir = ks_xstrdup(tmpdir && tmpdir[0] ? tmpdir : "/tmp");
	r->timeout_ms = (uint64_t)((o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT) * 1000);
	build_args(r, o);
	r->work.data = r;
	cache.stats.renders++;
	ks_require(uv_queue_work(loop, &r->work, work, after_work) == 0);
	return r;
}

void ks_helm_cancel(struct ks_helm_req *r)
{
	ks_require(!r->finished && !r->cancelled);
	cache.stats.cancelled++;
	r->cancelled = true;
	if (r->state == DIGEST) { /* after_work frees it, and the file it may have written */
		uv_cancel((uv_req_t *)&r->work);
		return;
	}
	remove_tmpfile(r);
	ks_proc_cancel(r->proc); /* kills helm's group, and frees itself once it is reaped */
	req_free(r);
}

pid_t ks_helm_pid(const struct ks_helm_req *r)
{
	return r->state == RUN && r->proc ? ks_proc_pid(r->proc) : 0;
}
