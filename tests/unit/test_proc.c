/*
 * test_proc.c: host/proc.c, a child process on the loop, with /bin/sh as the child:
 * stdout and the exit status; a program that does not exist; a stdout past its cap kills
 * the group; a timeout kills the group (the grandchild too); the stderr tail; a child that
 * exits while a grandchild holds its pipes is reported after the grace period; a cancelled
 * child is killed and its callback never runs.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "proc.h"
#include "test.h"

/* Whether pid is gone or a zombie (killed, not yet reaped by whoever inherited it). */
static bool dead(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = 0;
	fclose(f);
	return state == 'Z' || state == 'X';
}

struct got {
	int calls;
	bool timed_out, too_big;
	int64_t status;
	int signal;
	size_t out_len, err_len;
	char out[256], err[256];
};

static void on_done(const struct ks_proc_result *res, void *data)
{
	struct got *g = data;

	g->calls++;
	g->timed_out = res->timed_out;
	g->too_big = res->too_big;
	g->status = res->status;
	g->signal = res->signal;
	g->out_len = res->out->len;
	g->err_len = res->err->len;
	snprintf(g->out, sizeof(g->out), "%.*s", (int)res->out->len,
		 res->out->data ? res->out->data : "");
	snprintf(g->err, sizeof(g->err), "%.*s", (int)res->err->len,
		 res->err->data ? res->err->data : "");
}

/* Run sh -c script to the end; returns the loop's close status. */
static int run_sh(const char *script, const struct ks_proc_opts *tmpl, struct got *g)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	struct ks_proc_opts o = tmpl ? *tmpl : (struct ks_proc_opts){ 0 };
	struct ks_proc *p = NULL;
	uv_loop_t loop;
	int rc;

	o.argv = argv;
	uv_loop_init(&loop);
	rc = ks_proc_start(&loop, &o, on_done, g, &p);
	if (rc == 0 && !p)
		rc = -EFAULT;
	uv_run(&loop, UV_RUN_DEFAULT);
	return rc ? rc : uv_loop_close(&loop);
}

TEST(stdout_and_the_exit_status)
{
	struct got g = { 0 };

	ASSERT_EQ(run_sh("printf hello; printf oops >&2; exit 3", NULL, &g), 0);
	ASSERT_EQ(g.calls, 1);
	ASSERT_STR(g.out, "hello");
	ASSERT_STR(g.err, "oops");
	ASSERT_EQ(g.status, 3);
	ASSERT_EQ(g.signal, 0);
	ASSERT(!g.timed_out && !g.too_big);
}

TEST(a_missing_program_is_an_error_and_no_callback)
{
	char *argv[] = { "/no/such/program", NULL };
	struct ks_proc_opts o = { .argv = argv };
	struct ks_proc *p = NULL;
	struct got g = { 0 };
	uv_loop_t loop;

	uv_loop_init(&loop);
	ASSERT_EQ(ks_proc_start(&loop, &o, on_done, &g, &p), -ENOENT);
	ASSERT(p == NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&loop), 0);
	ASSERT_EQ(g.calls, 0);
}

TEST(stdout_past_its_cap_kills_the_group)
{
	struct ks_proc_opts o = { .max_output = 1000 };
	struct got g = { 0 };

	ASSERT_EQ(run_sh("while :; do echo 0123456789; done", &o, &g), 0);
	ASSERT_EQ(g.calls, 1);
	ASSERT(g.too_big);
	ASSERT_EQ(g.signal, SIGKILL);
	ASSERT(g.out_len <= 1000);
}

TEST(a_timeout_kills_the_child_and_its_children)
{
	struct ks_proc_opts o = { .timeout_ms = 200 };
	struct got g = { 0 };
	char pidfile[] = "/tmp/ks-test-proc.XXXXXX", script[256];
	FILE *f;
	int fd = mkstemp(pidfile), grandchild = 0;

	ASSERT(fd >= 0);
	close(fd);
	snprintf(script, sizeof(script), "sleep 60 & echo $! > %s; wait", pidfile);
	ASSERT_EQ(run_sh(script, &o, &g), 0);
	ASSERT_EQ(g.calls, 1);
	ASSERT(g.timed_out);
	ASSERT_EQ(g.signal, SIGKILL);
	f = fopen(pidfile, "r");
	ASSERT(f && fscanf(f, "%d", &grandchild) == 1);
	fclose(f);
	unlink(pidfile);
	ASSERT(grandchild > 0);
	ASSERT(dead(grandchild)); /* the sleep went with its group */
}

TEST(the_stderr_tail_is_kept)
{
	struct ks_proc_opts o = { .max_stderr = 10 };
	struct got g = { 0 };

	ASSERT_EQ(run_sh("printf 'aaaaaaaaaaaaaaaaaaaaTHE-END-67' >&2", &o, &g), 0);
	ASSERT_EQ(g.err_len, 10);
	ASSERT_STR(g.err, "THE-END-67");
}

TEST(a_grandchild_holding_the_pipes_does_not_hold_the_result)
{
	struct got g = { 0 };

	/* setsid: the sleep leaves the group, so only the grace period ends the wait. */
	ASSERT_EQ(run_sh("setsid sleep 5 & printf done; exit 0", NULL, &g), 0);
	ASSERT_EQ(g.calls, 1);
	ASSERT_STR(g.out, "done");
	ASSERT_EQ(g.status, 0);
	ASSERT(!g.timed_out);
}

static void cancel_now(uv_timer_t *t)
{
	struct ks_proc *p = t->data;

	ks_proc_cancel(p);
	uv_close((uv_handle_t *)t, NULL);
}

TEST(a_cancelled_child_is_killed_and_never_reported)
{
	char *argv[] = { "/bin/sh", "-c", "sleep 60", NULL };
	struct ks_proc_opts o = { .argv = argv };
	struct ks_proc *p = NULL;
	struct got g = { 0 };
	uv_loop_t loop;
	uv_timer_t t;
	pid_t pid;

	uv_loop_init(&loop);
	ASSERT_EQ(ks_proc_start(&loop, &o, on_done, &g, &p), 0);
	pid = ks_proc_pid(p);
	ASSERT(pid > 0);
	uv_timer_init(&loop, &t);
	t.data = p;
	uv_timer_start(&t, cancel_now, 50, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_EQ(uv_loop_close(&loop), 0);
	ASSERT_EQ(g.calls, 0);
	ASSERT(dead(pid));
}

int main(void)
{
	alarm(60);
	RUN(stdout_and_the_exit_status);
	RUN(a_missing_program_is_an_error_and_no_callback);
	RUN(stdout_past_its_cap_kills_the_group);
	RUN(a_timeout_kills_the_child_and_its_children);
	RUN(the_stderr_tail_is_kept);
	RUN(a_grandchild_holding_the_pipes_does_not_hold_the_result);
	RUN(a_cancelled_child_is_killed_and_never_reported);
	TEST_MAIN();
}
