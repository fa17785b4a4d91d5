/*
 * exec.c: `kupenstack exec FILE.lua [ARGS]`: a Lua script in the plugin sandbox with the
 * host modules (lua/script.h), for tests and operators' one-off tasks.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "cmd/cmd.h"
#include "http.h"
#include "ks.h"
#include "kube.h"
#include "lua/script.h"

int ks_cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "os-config", required_argument, NULL, 'o' },
		{ "os-cloud", required_argument, NULL, 'c' },
		{ "stdlib", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kc = getenv("KUBECONFIG"), *osc = NULL, *cloud = NULL;
	struct ks_lua_host host = { .loop = uv_default_loop() };
	struct ks_kubeconfig cfg;
	char *stdlib = NULL;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "+k:o:c:s:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kc = optarg;
			break;
		case 'o':
			osc = optarg;
			break;
		case 'c':
			cloud = optarg;
			break;
		case 's':
			stdlib = ks_xstrdup(optarg);
			break;
		case 'l':
			if (ks_cmd_log_level(optarg) != 0)
				return 2;
			break;
		case 'h':
			ks_cmd_usage(stdout);
			return 0;
		default:
			ks_cmd_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "kupenstack: exec needs a FILE.lua\n");
		return 2;
	}
	if (ks_cmd_clouds(&host, osc, cloud) != 0)
		return 1;
	host.stdlib_dir = stdlib = stdlib ? stdlib : ks_cmd_stdlib();
	host.http = ks_http_new(host.loop);
	if (kc) {
		if (ks_cmd_kubeconfig(&cfg, kc, NULL) != 0) {
			rc = 1;
			goto out;
		}
		host.kube = ks_kube_new(host.http, &cfg);
		ks_kubeconfig_deinit(&cfg);
	}
	rc = ks_lua_script_run(&host, NULL, argv[optind], argc - optind - 1, argv + optind + 1);
	ks_kube_free(host.kube);
out:
	ks_http_free(host.http);
	uv_run(host.loop, UV_RUN_DEFAULT);
	uv_loop_close(host.loop);
	free((char *)host.clouds_yaml);
	free(stdlib);
	return rc;
}
