#pragma once
/*
 * proc.h: a child process run on the libuv loop, for the host's helpers (helm). The
 * child leads a process group of its own (UV_PROCESS_DETACHED), its stdin is closed,
 * its stdout is collected up to a cap and the end of its stderr is kept; past its
 * timeout, or past the cap, the whole group gets SIGKILL. The result is reported once
 * the child is reaped and both pipes are at their end (or GRACE_MS after the child
 * exits while something it started still holds them open). Knows nothing of what it
 * runs. Everything here runs on the loop thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "ks.h"

struct ks_proc;

struct ks_proc_result {
	bool timed_out;		  /* killed past its timeout */
	bool too_big;		  /* killed when stdout passed max_output */
	int64_t status;		  /* its exit status (0 when killed by a signal) */
	int signal;		  /* the signal that ended it, or 0 */
	const struct ks_buf *out; /* stdout, at most max_output bytes */
	const struct ks_buf *err; /* the last max_stderr bytes of stderr */
};

/* Called once, from the loop, unless ks_proc_cancel() came first. res is valid during
 * the call only. */
typedef void (*ks_proc_cb)(const struct ks_proc_result *res, void *data);

struct ks_proc_opts {
	char *const *argv;   /* argv[0] is the program (searched on PATH); NULL-terminated */
	uint64_t timeout_ms; /* 0: none */
	size_t max_output;   /* 0: 64 MiB */
	size_t max_stderr;   /* 0: 16 KiB */
};

/*
 * Start o->argv (copied by the kernel: o may go after the call). Returns 0 and sets *out,
 * or the -errno of uv_spawn (-ENOENT: no such program), and then cb never runs and
 * nothing is left to free.
 */
int ks_proc_start(uv_loop_t *loop, const struct ks_proc_opts *o, ks_proc_cb cb, void *data,
		  struct ks_proc **out);

/*
 * Cancel p before its callback ran: the callback never runs, the group gets SIGKILL, and
 * p frees itself once the child is reaped and its handles are closed.
 */
void ks_proc_cancel(struct ks_proc *p);

/* The child's pid while it runs (not yet reaped), else 0. */
pid_t ks_proc_pid(const struct ks_proc *p);
