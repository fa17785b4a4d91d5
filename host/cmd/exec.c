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
		{ "set", required_argument, NULL, 'E' },
		{ "set-file", required_argument, NULL, 'F' },
		{ "stdlib", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kc = getenv("KUBECONFIG");
	struct ks_lua_host host = { .loop = uv_default_loop() };
	struct ks_cmd_shared sh = { 0 };
	struct ks_kubeconfig cfg;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "+k:E:F:s:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kc = optarg;
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
	if (optind >= argc) {
		fprintf(stderr, "kupenstack: exec needs a FILE.lua\n");
		rc = 2;
		goto out;
	}
	host.settings = sh.settings.v;
	host.nsettings = sh.settings.n;
	if (!sh.stdlib)
		sh.stdlib = ks_cmd_stdlib();
	host.stdlib_dir = sh.stdlib;
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
out:
	ks_kube_free(host.kube);
	if (host.http)
		ks_http_free(host.http);
	uv_run(host.loop, UV_RUN_DEFAULT);
	uv_loop_close(host.loop);
	ks_cmd_shared_free(&sh);
	return rc;
}
