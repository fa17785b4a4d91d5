/*
 * run.c: `kupenstack run`: the operator's options into struct ks_app_opts, then
 * ks_app_run() (cmd/app.c) until SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/app.h"
#include "cmd/cmd.h"
#include "ks.h"

/* --plugin-max-memory (c 'M'), -instructions ('I') or -seconds ('S') = arg into o. */
static int plugin_cap(struct ks_app_opts *o, int c, const char *arg)
{
	static const struct {
		const char *name;
		double lo, hi;
	} caps[] = { { "memory", 1, 65536 },
		     { "instructions", 1e4, 1e15 },
		     { "seconds", 0.01, 1e6 } };
	int i = c == 'M' ? 0 : c == 'I' ? 1 : 2;
	char *end;
	double v = strtod(arg, &end);

	if (*end || !(v >= caps[i].lo && v <= caps[i].hi)) {
		fprintf(stderr, "kupenstack: --plugin-max-%s: a number from %g to %g\n",
			caps[i].name, caps[i].lo, caps[i].hi);
		return -EINVAL;
	}
	*(i == 0   ? &o->plugin_max_memory_mb
	  : i == 1 ? &o->plugin_max_instructions
		   : &o->plugin_max_seconds) = v;
	return 0;
}

/* The message bus URL in file path (a mounted Secret, like clouds.yaml: a URL holds a
 * password, which a flag would show in ps), trailing white space cut; NULL after saying
 * why. */
static char *amqp_url(const char *path)
{
	size_t len;
	int rc;
	char *s = ks_read_file(path, &len, &rc);

	if (!s) {
		fprintf(stderr, "kupenstack: --amqp-url-file %s: %s\n", path, strerror(-rc));
		return NULL;
	}
	while (len > 0 && strchr(" \t\r\n", s[len - 1]))
		s[--len] = '\0';
	if (strncmp(s, "amqp://", 7) != 0 || strlen(s) != len) {
		fprintf(stderr, "kupenstack: --amqp-url-file %s: not one amqp:// URL\n", path);
		free(s);
		return NULL;
	}
	return s;
}

int ks_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "plugins", required_argument, NULL, 'p' },
		{ "plugins-configmaps", required_argument, NULL, 'P' },
		{ "metrics-addr", required_argument, NULL, 'm' },
		{ "leader-elect", no_argument, NULL, 'L' },
		{ "lease-duration", required_argument, NULL, 'D' },
		{ "drain-seconds", required_argument, NULL, 'T' },
		{ "concurrency", required_argument, NULL, 'j' },
		{ "resync", required_argument, NULL, 'r' },
		{ "set", required_argument, NULL, 'E' },
		{ "set-file", required_argument, NULL, 'F' },
		{ "amqp-url-file", required_argument, NULL, 'A' },
		{ "stdlib", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "plugin-max-memory", required_argument, NULL, 'M' },
		{ "plugin-max-instructions", required_argument, NULL, 'I' },
		{ "plugin-max-seconds", required_argument, NULL, 'S' },
		{ "admission-addr", required_argument, NULL, 1000 },
		{ "admission-url", required_argument, NULL, 1001 },
		{ "admission-namespace", required_argument, NULL, 1002 },
		{ "admission-failure-policy", required_argument, NULL, 1003 },
		{ "admission-cert-seconds", required_argument, NULL, 1004 },
		{ "admission-audit-seconds", required_argument, NULL, 1005 },
		{ "admission-service", required_argument, NULL, 1006 },
		{ "admission-client-ca", required_argument, NULL, 1007 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ks_app_opts o = { .kubeconfig = getenv("KUBECONFIG"),
				 .plugin_max_memory_mb = 256,
				 .plugin_max_instructions = 1e10,
				 .plugin_max_seconds = 1800 };
	struct ks_cmd_shared sh = { 0 };
	const char *amqp = NULL;
	char *end;
	int c, rc = 0;
	long n;

	while ((c = getopt_long(argc, argv, "k:c:n:p:P:m:LD:T:j:r:A:E:F:s:l:M:I:S:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'k':
			o.kubeconfig = optarg;
			break;
		case 'c':
			o.context = optarg;
			break;
		case 'n':
			o.namespace = optarg;
			break;
		case 'p':
			o.plugins_dir = optarg;
			break;
		case 'P':
			o.plugins_configmaps = optarg;
			break;
		case 'm':
			o.metrics_addr = optarg;
			break;
		case 'L':
			o.leader_elect = true;
			break;
		case 'D':
			o.lease_duration = strtod(optarg, &end);
			if (*end || o.lease_duration < 3) {
				fprintf(stderr,
					"kupenstack: --lease-duration: seconds, at least 3\n");
				rc = 2;
				goto out;
			}
			o.renew_deadline = o.lease_duration * 2 / 3;
			o.retry_period = o.lease_duration / 7.5;
			break;
		case 'T':
			o.drain_seconds = strtod(optarg, &end);
			if (*end || !(o.drain_seconds >= 1 && o.drain_seconds <= 3600)) {
				fprintf(stderr,
					"kupenstack: --drain-seconds: seconds, from 1 to 3600\n");
				rc = 2;
				goto out;
			}
			break;
		case 'j':
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64) {
				fprintf(stderr,
					"kupenstack: --concurrency: a number from 1 to 64\n");
				rc = 2;
				goto out;
			}
			o.concurrency = (unsigned)n;
			break;
		case 'r':
			o.resync = strtod(optarg, &end);
			if (*end || !(o.resync >= 1 && o.resync <= 86400 * 7)) {
				fprintf(stderr,
					"kupenstack: --resync: seconds, from 1 to 604800\n");
				rc = 2;
				goto out;
			}
			break;
		case 'A':
			amqp = optarg;
			break;
		case 'M':
		case 'I':
		case 'S':
			if (plugin_cap(&o, c, optarg) != 0) {
				rc = 2;
				goto out;
			}
			break;
		case 1000 ... 1007:
			if (ks_admission_flag(&o.admission, c - 1000, optarg) != 0)
				return 2;
			break;
		case 'h':
			ks_cmd_usage(stdout);
			goto out;
		default:
			rc = ks_cmd_shared_opt(&sh, c, optarg);
			if (rc == -1) {
				ks_cmd_usage(stderr);
				rc = 2;
			}
			if (rc != 0)
				goto out;
		}
	}
	if (optind != argc || (!o.plugins_dir && !o.plugins_configmaps)) {
		fprintf(stderr, "kupenstack: run needs --plugins DIR or --plugins-configmaps "
				"NAMESPACE, and no other arguments\n");
		rc = 2;
		goto out;
	}
	if (o.plugins_dir && access(o.plugins_dir, R_OK | X_OK) != 0) {
		fprintf(stderr, "kupenstack: --plugins %s: %s\n", o.plugins_dir, strerror(errno));
		rc = 1;
		goto out;
	}
	if (ks_admission_check(&o.admission) != 0) {
		rc = 2;
		goto out;
	}
	if (amqp && !(o.amqp_url = amqp_url(amqp))) {
		rc = 1;
		goto out;
	}
	o.settings = sh.settings.v;
	o.nsettings = sh.settings.n;
	if (!sh.stdlib)
		sh.stdlib = ks_cmd_stdlib();
	o.stdlib_dir = sh.stdlib;
	rc = ks_app_run(&o);
out:
	free((char *)o.amqp_url);
	ks_cmd_shared_free(&sh);
	return rc;
}
