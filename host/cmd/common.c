/*
 * common.c: what the commands share: the log level, the kubeconfig, the Lua library's
 * place, the operator's settings, and the usage text.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "ks.h"
#include "log.h"

void ks_cmd_usage(FILE *f)
{
	fputs("usage: kupenstack version\n"
	      "       kupenstack run --plugins DIR|--plugins-configmaps NS [--kubeconfig F]\n"
	      "                      [--context C] [--namespace N]\n"
	      "                      [--metrics-addr HOST:PORT] [--leader-elect] [--lease-duration "
	      "S]\n"
	      "                      [--concurrency K] [--resync S] [--drain-seconds S]\n"
	      "                      [--set NAME=VALUE]... [--set-file NAME=FILE]...\n"
	      "                      [--amqp-url-file FILE]\n"
	      "                      [--stdlib DIR] [--log-level debug|info|warn|error]\n"
	      "                      [--plugin-max-memory MIB] [--plugin-max-instructions N]\n"
	      "                      [--plugin-max-seconds S]\n"
	      "                      [--admission-addr HOST:PORT [--admission-url URL]\n"
	      "                       [--admission-namespace NS] [--admission-failure-policy "
	      "Fail|Ignore]\n"
	      "                       [--admission-cert-seconds S] [--admission-audit-seconds "
	      "S]\n"
	      "                       [--admission-service NAME[:PORT]] [--admission-client-ca "
	      "FILE]]\n"
	      "  caps on what plugins declare in 'limits' (defaults 256 MiB, 1e10, 1800 s);\n"
	      "  one run of a plugin may hold the loop for lease-duration / 6 (2.5 s), and a\n"
	      "  --leader-elect host whose loop stops turning for lease-duration / 3 (5 s)\n"
	      "  exits (status 3) so that a standby takes the Lease; on SIGTERM in-flight\n"
	      "  reconciles get --drain-seconds (30) to finish; --set and --set-file give\n"
	      "  the operator's settings to the plugins (ks.core.config: clouds_yaml, cloud,\n"
	      "  cluster, project_namespaces, ...; plugins/README.md)\n"
	      "       kupenstack watch [--kubeconfig F] [--context C] [--namespace N]\n"
	      "                        [--log-level debug|info|warn|error] GROUP/VERSION/RESOURCE\n"
	      "  GROUP is empty for the core group: /v1/configmaps\n"
	      "       kupenstack exec [--kubeconfig F] [--set N=V]... [--set-file N=F]...\n"
	      "                       [--stdlib DIR] FILE.lua [ARGS]\n"
	      "  runs FILE.lua in the plugin sandbox with the host modules (ks.core.*)\n"
	      "       kupenstack plugin test|run|status ...   (kupenstack plugin help)\n"
	      "       kupenstack policy test DIR...   (admission policies against fixtures)\n",
	      f);
}

int ks_cmd_log_level(const char *arg)
{
	enum ks_log_level lvl;

	if (ks_log_parse_level(arg, &lvl) != 0) {
		fprintf(stderr, "kupenstack: --log-level: unknown level %s\n", arg);
		return 2;
	}
	ks_log_set_level(lvl);
	return 0;
}

char *ks_cmd_stdlib(void)
{
	char exe[4096], *slash, *dir;
	ssize_t n;

	if (getenv("KS_STDLIB"))
		return ks_xstrdup(getenv("KS_STDLIB"));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			dir = ks_xasprintf("%s/../stdlib", exe);
			if (access(dir, R_OK) == 0)
				return dir;
			free(dir);
		}
	}
	return ks_xstrdup(KS_DATA "/stdlib");
}

int ks_cmd_kubeconfig(struct ks_kubeconfig *cfg, const char *kc, const char *ctx)
{
	char *err = NULL;
	int rc = kc ? ks_kubeconfig_load(cfg, kc, ctx, &err)
		    : ks_kubeconfig_in_cluster(cfg, NULL, &err);

	if (rc == 0)
		return 0;
	fprintf(stderr, "kupenstack: %s\n", err);
	free(err);
	return 1;
}

static bool setting_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

int ks_cmd_setting(struct ks_cmd_settings *s, const char *arg, bool file)
{
	const char *opt = file ? "--set-file" : "--set", *eq = strchr(arg, '=');
	char *name, *value;
	size_t i, len;
	int rc;

	if (!eq || !setting_name(arg, (size_t)(eq - arg))) {
		fprintf(stderr,
			"kupenstack: %s %s: NAME=%s, NAME of a-z, 0-9 and _ (from a letter, at "
			"most 63)\n",
			opt, arg, file ? "FILE" : "VALUE");
		return 2;
	}
	if (s->n == 64) {
		fprintf(stderr, "kupenstack: %s %s: at most 64 settings\n", opt, arg);
		return 2;
	}
	if (file) {
		value = ks_read_file(eq + 1, &len, &rc);
		if (!value) {
			fprintf(stderr, "kupenstack: %s %s: %s\n", opt, arg, strerror(-rc));
			return 1;
		}
		if (len > 1 << 20 || strlen(value) != len) {
			fprintf(stderr, "kupenstack: %s %s: not a text of at most 1 MiB\n", opt,
				arg);
			free(value);
			return 2;
		}
	} else {
		value = ks_xstrdup(eq + 1);
	}
	name = ks_xstrndup(arg, (size_t)(eq - arg));
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->v[i].name, name) == 0) {
			free(name);
			free((char *)s->v[i].value);
			s->v[i].value = value;
			return 0;
		}
	}
	s->v = ks_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = (struct ks_setting){ name, value };
	return 0;
}

void ks_cmd_settings_free(struct ks_cmd_settings *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free((char *)s->v[i].name);
		free((char *)s->v[i].value);
	}
	free(s->v);
	*s = (struct ks_cmd_settings){ 0 };
}

int ks_cmd_shared_opt(struct ks_cmd_shared *sh, int c, const char *arg)
{
	switch (c) {
	case 'E':
	case 'F':
		return ks_cmd_setting(&sh->settings, arg, c == 'F');
	case 's':
		free(sh->stdlib);
		sh->stdlib = ks_xstrdup(arg);
		return 0;
	case 'l':
		return ks_cmd_log_level(arg);
	default:
		return -1;
	}
}

void ks_cmd_shared_free(struct ks_cmd_shared *sh)
{
	ks_cmd_settings_free(&sh->settings);
	free(sh->stdlib);
	sh->stdlib = NULL;
}
