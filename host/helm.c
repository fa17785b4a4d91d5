/*
 * helm.c: `helm template` on the loop: the chart digest (on the thread pool), the
 * child process and its pipes, and the LRU cache of renders.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helm.h"
#include "ks.h"
#include "list.h"
#include "yaml.h"

#define MAX_FILES 10000		     /* files in a chart directory */
#define MAX_CHART_BYTES (256u << 20) /* bytes they hold */
#define MAX_DEPTH 16		     /* directory levels (symbolic links are followed) */
#define MAX_OUTPUT (64u << 20)	     /* bytes helm may print */
#define MAX_STDERR (16u << 10)	     /* the end of stderr kept for messages */
#define TAIL_LINES 5		     /* lines of stderr in a message */
#define GRACE_MS 2000		     /* after SIGKILL, or after exit with pipes still open */
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
	bool cancelled, exited, timed_out, too_big, finished;
	char *chart, *values, *tmpdir;
	char **argv; /* NULL-terminated; one free slot at the end for --values= */
	size_t argc;
	char *key; /* the cache key, but the digest */
	uint64_t timeout_ms;
	/* The digest step, on the thread pool. */
	uv_work_t work;
	uint64_t digest;
	int work_err;
	bool values_failed;
	char tmpfile[PATH_MAX]; /* "" when none */
	/* The child. */
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;
	int open; /* handles not closed yet */
	int eofs; /* pipes at their end */
	int64_t status;
	int signal;
	struct ks_buf stdout_buf, stderr_buf;
	char rbuf[65536];
};

/* The cache: most recently used first. */
struct entry {
	struct ks_list lru; /* in cache.lru */
	uint64_t digest;
	char *key;
	cJSON *objects;
};

static struct {
	struct ks_list lru; /* most recently used first */
	struct ks_helm_stats stats;
} cache = { .lru = { &cache.lru, &cache.lru } };

/* --- the chart digest (thread pool) --------------------------------------------- */

struct digest {
	uint64_t h;
	size_t files;
	uint64_t bytes;
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		*h ^= *s++;
		*h *= 0x100000001b3ull;
	}
}

/* Mix the relative path, the contents and the length of one file into d. */
static int hash_file(struct digest *d, const char *path, const char *rel)
{
	char buf[16384];
	uint64_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	if (++d->files > MAX_FILES)
		return -EFBIG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* /proc/kmsg: no hang */
	if (fd < 0)
		return -errno;
	fnv(&d->h, rel, strlen(rel) + 1);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		fnv(&d->h, buf, (size_t)n);
		len += (uint64_t)n;
		d->bytes += (uint64_t)n;
		if (d->bytes > MAX_CHART_BYTES) {
			rc = -EFBIG;
			break;
		}
	}
	fnv(&d->h, &len, sizeof(len));
	close(fd);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Hash every regular file under path (a buffer of PATH_MAX), in name order. */
static int walk(struct digest *d, char *path, size_t root_len, int depth)
{
	size_t len = strlen(path);
	struct dirent **names;
	struct stat st;
	int i, n, rc = 0;

	if (depth > MAX_DEPTH)
		return -ELOOP;
	n = scandir(path, &names, NULL, by_name);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		if (rc || !strcmp(name, ".") || !strcmp(name, ".."))
			goto next;
		if (len + 1 + strlen(name) >= PATH_MAX) {
			rc = -ENAMETOOLONG;
			goto next;
		}
		snprintf(path + len, PATH_MAX - len, "/%s", name);
		if (stat(path, &st) != 0)
			rc = -errno;
		else if (S_ISDIR(st.st_mode))
			rc = walk(d, path, root_len, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = hash_file(d, path, path + root_len);
		path[len] = '\0';
	next:
		free(names[i]);
	}
	free(names);
	return rc;
}

static int digest_chart(const char *chart, uint64_t *out)
{
	struct digest d = { .h = 0xcbf29ce484222325ull };
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (stat(chart, &st) != 0)
		return -errno;
	if (snprintf(path, sizeof(path), "%s", chart) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (S_ISDIR(st.st_mode))
		rc = walk(&d, path, strlen(path), 0);
	else if (S_ISREG(st.st_mode))
		rc = hash_file(&d, path, "");
	else
		rc = -EINVAL;
	*out = d.h;
	return rc;
}

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

	r->work_err = digest_chart(r->chart, &r->digest);
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

static struct entry *cache_find(uint64_t digest, const char *key)
{
	struct ks_list *l, *nx;
	struct entry *found = NULL;

	ks_list_foreach_safe(l, nx, &cache.lru) {
		struct entry *e = KS_CONTAINER_OF(l, struct entry, lru);

		if (e->digest == digest && !strcmp(e->key, key)) {
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
static void cache_put(uint64_t digest, const char *key, cJSON *objects)
{
	struct entry *e = cache_find(digest, key);

	if (e) { /* an identical render finished meanwhile */
		cJSON_Delete(e->objects);
		e->objects = objects;
		return;
	}
	e = ks_xcalloc(1, sizeof(*e));
	e->digest = digest;
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
	ks_buf_deinit(&r->stdout_buf);
	ks_buf_deinit(&r->stderr_buf);
	free(r);
}

static void remove_tmpfile(struct ks_helm_req *r)
{
	if (r->tmpfile[0])
		unlink(r->tmpfile);
	r->tmpfile[0] = '\0';
}

/* The last TAIL_LINES non-empty lines of stderr, after a newline; "" when none. */
static char *stderr_tail(struct ks_helm_req *r)
{
	const char *s = r->stderr_buf.data ? r->stderr_buf.data : "";
	const char *end = s + r->stderr_buf.len, *p;
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

static void report_error(struct ks_helm_req *r, int err, const char *reason, char *line)
{
	char *tail = stderr_tail(r), *msg = ks_xasprintf("%s%s", line, tail);
	struct ks_helm_result res = { .err = err, .reason = reason, .message = msg };

	if (!r->timed_out && !r->signal)
		res.status = (int)r->status;
	cache.stats.failures++;
	r->cb(&res, r->data);
	free(tail);
	free(msg);
	free(line);
}

static void report(struct ks_helm_req *r)
{
	struct ks_helm_result res = { 0 };
	char *perr = NULL;
	cJSON *objects;

	if (r->too_big)
		return report_error(
			r, -EFBIG, "OutputTooLarge",
			ks_xasprintf("helm template printed more than %u MiB", MAX_OUTPUT >> 20));
	if (r->timed_out)
		return report_error(
			r, -ETIMEDOUT, "Timeout",
			ks_xasprintf("helm template timed out after %g s and was killed",
				     (double)r->timeout_ms / 1000));
	if (r->signal)
		return report_error(
			r, -EIO, "HelmFailed",
			ks_xasprintf("helm template was killed by signal %d", r->signal));
	if (r->status)
		return report_error(
			r, -EIO, "HelmFailed",
			ks_xasprintf("helm template exited with status %d", (int)r->status));
	objects = ks_yaml_parse_all(r->stdout_buf.data ? r->stdout_buf.data : "", r->stdout_buf.len,
				    &perr);
	if (!objects) {
		report_error(r, -EBADMSG, "ParseError",
			     ks_xasprintf("could not parse helm's output: %s", perr ? perr : "?"));
		free(perr);
		return;
	}
	cache_put(r->digest, r->key, objects);
	res.objects = objects;
	r->cb(&res, r->data);
}

static void closed(uv_handle_t *h)
{
	struct ks_helm_req *r = h->data;

	if (--r->open == 0)
		req_free(r);
}

static void close_all(struct ks_helm_req *r)
{
	uv_close((uv_handle_t *)&r->proc, closed);
	uv_close((uv_handle_t *)&r->out, closed);
	uv_close((uv_handle_t *)&r->err, closed);
	uv_close((uv_handle_t *)&r->timer, closed);
}

/* Once helm is reaped and both pipes are at their end: report, then close. */
static void maybe_finish(struct ks_helm_req *r)
{
	if (r->finished || !r->exited || r->eofs < 2)
		return;
	r->finished = true;
	uv_timer_stop(&r->timer);
	remove_tmpfile(r);
	if (!r->cancelled)
		report(r);
	close_all(r);
}

/* SIGKILL helm's process group (it leads one: UV_PROCESS_DETACHED), not yet reaped. */
static void kill_group(struct ks_helm_req *r)
{
	if (!r->exited && r->proc.pid > 0)
		kill(-r->proc.pid, SIGKILL);
}

static void on_timer(uv_timer_t *t)
{
	struct ks_helm_req *r = t->data;

	if (r->exited) { /* reaped, but something else holds its pipes open */
		uv_read_stop((uv_stream_t *)&r->out);
		uv_read_stop((uv_stream_t *)&r->err);
		r->eofs = 2;
		maybe_finish(r);
		return;
	}
	if (!r->cancelled)
		r->timed_out = true;
	kill_group(r);
	uv_timer_start(&r->timer, on_timer, GRACE_MS, 0);
}

static void on_exit_(uv_process_t *p, int64_t status, int signal)
{
	struct ks_helm_req *r = p->data;

	r->exited = true;
	r->status = status;
	r->signal = signal;
	if (r->eofs < 2)
		uv_timer_start(&r->timer, on_timer, GRACE_MS, 0);
	maybe_finish(r);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ks_helm_req *r = h->data;

	(void)hint;
	*buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ks_helm_req *r = s->data;
	struct ks_buf *b = s == (uv_stream_t *)&r->out ? &r->stdout_buf : &r->stderr_buf;

	if (n < 0) {
		uv_read_stop(s);
		r->eofs++;
		maybe_finish(r);
		return;
	}
	if (b == &r->stdout_buf && (r->too_big || b->len + (size_t)n > MAX_OUTPUT)) {
		r->too_big = true; /* read on to the end, dropping the rest */
		kill_group(r);
		return;
	}
	ks_buf_append(b, buf->base, (size_t)n);
	if (b == &r->stderr_buf && b->len > MAX_STDERR)
		ks_buf_consume(b, b->len - MAX_STDERR);
}

static void spawn(struct ks_helm_req *r)
{
	uv_process_options_t po = { 0 };
	uv_stdio_container_t io[3];
	int rc;

	r->state = RUN;
	uv_pipe_init(r->loop, &r->out, 0);
	uv_pipe_init(r->loop, &r->err, 0);
	uv_timer_init(r->loop, &r->timer);
	r->proc.data = r->out.data = r->err.data = r->timer.data = r;
	r->open = 4;
	if (r->tmpfile[0])
		r->argv[r->argc++] = ks_xasprintf("--values=%s", r->tmpfile);
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&r->out;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&r->err;
	po.file = r->argv[0];
	po.args = r->argv;
	po.stdio = io;
	po.stdio_count = 3;
	po.exit_cb = on_exit_;
	po.flags = UV_PROCESS_DETACHED;
	rc = uv_spawn(r->loop, &r->proc, &po);
	r->proc.data = r;
	if (rc) {
		r->finished = true;
		remove_tmpfile(r);
		report_error(r, -ENOENT, "SpawnError",
			     ks_xasprintf("could not run %s: %s", r->argv[0], uv_strerror(rc)));
		close_all(r);
		return;
	}
	cache.stats.runs++;
	uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
	uv_timer_start(&r->timer, on_timer, r->timeout_ms, 0);
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
		report_error(r, r->work_err, "ChartError",
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
	ks_buf_init(&r->stdout_buf);
	ks_buf_init(&r->stderr_buf);
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
	kill_group(r);
	uv_timer_start(&r->timer, on_timer, GRACE_MS, 0);
}

pid_t ks_helm_pid(const struct ks_helm_req *r)
{
	return r->state == RUN && !r->exited && !r->finished ? r->proc.pid : 0;
}
