/* proc.c: a child process on the loop (proc.h). */
#include "proc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#define GRACE_MS 2000 /* after SIGKILL, or after exit with pipes still open */
#define DEFAULT_MAX_OUTPUT (64u << 20)
#define DEFAULT_MAX_STDERR (16u << 10)

struct ks_proc {
	ks_proc_cb cb;
	void *data;
	size_t max_output, max_stderr;
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;
	int open; /* handles not closed yet */
	int eofs; /* pipes at their end */
	bool cancelled, exited, timed_out, too_big, finished;
	int64_t status;
	int signal;
	struct ks_buf stdout_buf, stderr_buf;
	char rbuf[65536];
};

static void closed(uv_handle_t *h)
{
	struct ks_proc *p = h->data;

	if (--p->open > 0)
		return;
	ks_buf_deinit(&p->stdout_buf);
	ks_buf_deinit(&p->stderr_buf);
	free(p);
}

static void close_all(struct ks_proc *p)
{
	uv_close((uv_handle_t *)&p->proc, closed);
	uv_close((uv_handle_t *)&p->out, closed);
	uv_close((uv_handle_t *)&p->err, closed);
	uv_close((uv_handle_t *)&p->timer, closed);
}

/* Once the child is reaped and both pipes are at their end: report, then close. */
static void maybe_finish(struct ks_proc *p)
{
	struct ks_proc_result res;

	if (p->finished || !p->exited || p->eofs < 2)
		return;
	p->finished = true;
	uv_timer_stop(&p->timer);
	if (!p->cancelled) {
		res = (struct ks_proc_result){ .timed_out = p->timed_out,
					       .too_big = p->too_big,
					       .status = p->signal ? 0 : p->status,
					       .signal = p->signal,
					       .out = &p->stdout_buf,
					       .err = &p->stderr_buf };
		p->cb(&res, p->data);
	}
	close_all(p);
}

/* SIGKILL the child's process group (it leads one), unless it was reaped. */
static void kill_group(struct ks_proc *p)
{
	if (!p->exited && p->proc.pid > 0)
		kill(-p->proc.pid, SIGKILL);
}

static void on_timer(uv_timer_t *t)
{
	struct ks_proc *p = t->data;

	if (p->exited) { /* reaped, but something else holds its pipes open */
		uv_read_stop((uv_stream_t *)&p->out);
		uv_read_stop((uv_stream_t *)&p->err);
		p->eofs = 2;
		maybe_finish(p);
		return;
	}
	if (!p->cancelled)
		p->timed_out = true;
	kill_group(p);
	uv_timer_start(&p->timer, on_timer, GRACE_MS, 0);
}

static void on_exit_(uv_process_t *h, int64_t status, int signal)
{
	struct ks_proc *p = h->data;

	p->exited = true;
	p->status = status;
	p->signal = signal;
	if (p->eofs < 2)
		uv_timer_start(&p->timer, on_timer, GRACE_MS, 0);
	maybe_finish(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ks_proc *p = h->data;

	*buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ks_proc *p = s->data;
	struct ks_buf *b = s == (uv_stream_t *)&p->out ? &p->stdout_buf : &p->stderr_buf;

	if (n < 0) {
		uv_read_stop(s);
		p->eofs++;
		maybe_finish(p);
		return;
	}
	if (b == &p->stdout_buf && (p->too_big || b->len + (size_t)n > p->max_output)) {
		p->too_big = true; /* read on to the end, dropping the rest */
		kill_group(p);
		return;
	}
	ks_buf_append(b, buf->base, (size_t)n);
	if (b == &p->stderr_buf && b->len > p->max_stderr)
		ks_buf_consume(b, b->len - p->max_stderr);
}

int ks_proc_start(uv_loop_t *loop, const struct ks_proc_opts *o, ks_proc_cb cb, void *data,
		  struct ks_proc **out)
{
	struct ks_proc *p = ks_xcalloc(1, sizeof(*p));
	uv_process_options_t po = { 0 };
	uv_stdio_container_t io[3];
	int rc;

	p->cb = cb;
	p->data = data;
	p->max_output = o->max_output ? o->max_output : DEFAULT_MAX_OUTPUT;
	p->max_stderr = o->max_stderr ? o->max_stderr : DEFAULT_MAX_STDERR;
	ks_buf_init(&p->stdout_buf);
	ks_buf_init(&p->stderr_buf);
	uv_pipe_init(loop, &p->out, 0);
	uv_pipe_init(loop, &p->err, 0);
	uv_timer_init(loop, &p->timer);
	p->proc.data = p->out.data = p->err.data = p->timer.data = p;
	p->open = 4;
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&p->out;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&p->err;
	po.file = o->argv[0];
	po.args = (char **)o->argv;
	po.stdio = io;
	po.stdio_count = 3;
	po.exit_cb = on_exit_;
	po.flags = UV_PROCESS_DETACHED;
	rc = uv_spawn(loop, &p->proc, &po);
	p->proc.data = p;
	if (rc) {
		p->finished = true;
		close_all(p); /* frees p from the loop; cb never runs */
		return rc;
	}
	uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
	if (o->timeout_ms)
		uv_timer_start(&p->timer, on_timer, o->timeout_ms, 0);
	*out = p;
	return 0;
}

void ks_proc_cancel(struct ks_proc *p)
{
	ks_require(!p->finished && !p->cancelled);
	p->cancelled = true;
	kill_group(p);
	uv_timer_start(&p->timer, on_timer, GRACE_MS, 0);
}

pid_t ks_proc_pid(const struct ks_proc *p)
{
	return !p->exited && !p->finished ? p->proc.pid : 0;
}
