/*
 * vet.c: the fixture check of a new plugin version in a child process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/vet.h"
#include "fixture/fixture.h"
#include "ks.h"
#include "log.h"
#include "proc.h"

struct ks_candidate_vet {
	struct ks_proc *proc;
	ks_candidate_verdict_fn cb;
	void *data;
};

/* The first line of b, or empty. */
static char *first_line(const struct ks_buf *b)
{
	size_t n = 0;

	while (b && n < b->len && b->data[n] != '\n')
		n++;
	return ks_xasprintf("%.*s", (int)n, n ? b->data : "");
}

static void exited(const struct ks_proc_result *res, void *data)
{
	struct ks_candidate_vet *v = data;
	char *out = first_line(res->out), *tail = first_line(res->err), *why = NULL;

	if (res->timed_out)
		why = ks_xasprintf("its fixtures did not finish within %d s", KS_CMD_VET_SECONDS);
	else if (res->status == 1 && *out)
		why = ks_xstrdup(out);
	else if (res->status != 0 || res->signal != 0)
		why = ks_xasprintf("its fixture check ended with status %lld signal %d: %s",
				   (long long)res->status, res->signal, tail);
	v->cb(why, v->data);
	free(why);
	free(tail);
	free(out);
	free(v);
}

static struct ks_candidate_vet *start(uv_loop_t *loop, const char *dir, const char *path,
				      const char *stdlib_dir, ks_candidate_verdict_fn cb,
				      void *data, char **err)
{
	struct ks_candidate_vet *v = ks_xcalloc(1, sizeof(*v));
	char exe[4096];
	size_t n = sizeof(exe);
	int rc = uv_exepath(exe, &n);
	char *argv[] = { exe,	       "plugin", "test",     (char *)dir,	 "--plugin",
			 (char *)path, "--vet",	 "--stdlib", (char *)stdlib_dir, NULL };

	v->cb = cb;
	v->data = data;
	if (!stdlib_dir)
		argv[7] = NULL;
	if (rc == 0)
		rc = ks_proc_start(loop,
				   &(struct ks_proc_opts){
					   .argv = argv,
					   .timeout_ms = KS_CMD_VET_SECONDS * 1000,
					   .max_output = 64 * 1024,
				   },
				   exited, v, &v->proc);
	if (rc != 0) {
		*err = ks_xstrdup(uv_strerror(rc));
		free(v);
		return NULL;
	}
	return v;
}

static void cancel(struct ks_candidate_vet *v)
{
	ks_proc_cancel(v->proc);
	free(v);
}

const struct ks_candidate_vetter ks_cmd_vetter = { start, cancel };

int ks_cmd_vet_child(const char *dir, const char *plugin, const char *stdlib)
{
	const char *slash = strrchr(plugin, '/');
	char *src, *err = NULL;
	size_t len;
	int rc;

	src = ks_read_file(plugin, &len, &rc);
	if (!src) {
		printf("cannot read %s: %s\n", plugin, strerror(-rc));
		return 1;
	}
	rc = ks_fixture_vet(dir, slash ? slash + 1 : plugin, src, len, stdlib, &err) == 0 ? 0 : 1;
	if (rc)
		printf("%s\n", err);
	free(err);
	free(src);
	return rc;
}
