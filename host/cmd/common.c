/*
 * common.c: what the commands share: the log level, the kubeconfig, the Lua library's
 * place, the OpenStack settings file, and the usage text.
 */
#include <errno.h>
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
	      "                      [--concurrency K] [--resync S]\n"
	      "                      [--os-config FILE] [--os-cloud NAME] [--cluster NAME]\n"
	      "                      [--amqp-url-file FILE]\n"
	      "                      [--project-namespaces labelled|all]\n"
	      "                      [--stdlib DIR] [--log-level debug|info|warn|error]\n"
	      "                      [--plugin-max-memory MIB] [--plugin-max-instructions N]\n"
	      "                      [--plugin-max-seconds S]\n"
	      "  caps on what plugins declare in 'limits' (defaults 256 MiB, 1e10, 1800 s);\n"
	      "  one run of a plugin may hold the loop for lease-duration / 6 (2.5 s), and a\n"
	      "  --leader-elect host whose loop stops turning for lease-duration / 3 (5 s)\n"
	      "  exits (status 3) so that a standby takes the Lease\n"
	      "       kupenstack watch [--kubeconfig F] [--context C] [--namespace N]\n"
	      "                        [--log-level debug|info|warn|error] GROUP/VERSION/RESOURCE\n"
	      "  GROUP is empty for the core group: /v1/configmaps\n"
	      "       kupenstack exec [--kubeconfig F] [--os-cloud C] [--stdlib DIR] FILE.lua "
	      "[ARGS]\n"
	      "  runs FILE.lua in the plugin sandbox with the host modules (ks.core.*)\n"
	      "       kupenstack plugin test|run|status ...   (kupenstack plugin help)\n",
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

int ks_cmd_clouds(struct ks_lua_host *host, const char *file, const char *cloud)
{
	size_t len;
	int rc;

	file = file ? file : getenv("OS_CLIENT_CONFIG_FILE");
	host->cloud = cloud ? cloud : getenv("OS_CLOUD");
	if (!file)
		return 0;
	host->clouds_yaml = ks_read_file(file, &len, &rc);
	if (!host->clouds_yaml) {
		fprintf(stderr, "kupenstack: cannot read %s: %s\n", file, strerror(-rc));
		return 1;
	}
	return 0;
}
