/*
 * main.c: argv, signals and uv_run only.
 *
 *   kupenstack version
 *   kupenstack watch [--kubeconfig F] [--context C] [--namespace N] [--log-level L]
 *                    GROUP/VERSION/RESOURCE
 *
 * `watch` lists and watches one kind through the host's client, reflector and cache,
 * and prints a line per add, update and delete: the first thing the controller
 * engine (issue 4) builds on, and a way to see what the host sees.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cache.h"
#include "http.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "admission/cli.h"
#include "app.h"
#include "lua/cli.h"
#include "lua/script.h"
#include "watch.h"

struct app {
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	struct ks_http *http;
	struct ks_kube *kube;
	struct ks_cache *cache;
	struct ks_watch *watch;
};

static void usage(FILE *f)
{
	fputs("usage: kupenstack version\n"
	      "       kupenstack run --plugins DIR|--plugins-configmaps NS [--kubeconfig F]\n"
	      "                      [--context C] [--namespace N]\n"
	      "                      [--metrics-addr HOST:PORT] [--leader-elect] [--lease-duration "
	      "S]\n"
	      "                      [--concurrency K] [--resync S]\n"
	      "                      [--os-config FILE] [--os-cloud NAME] [--cluster NAME]\n"
	      "                      [--project-namespaces labelled|all]\n"
	      "                      [--stdlib DIR] [--log-level debug|info|warn|error]\n"
	      "                      [--plugin-max-memory MIB] [--plugin-max-instructions N]\n"
	      "                      [--plugin-max-seconds S]\n"
	      "                      [--admission-addr HOST:PORT [--admission-url URL]\n"
	      "                       [--admission-namespace NS] [--admission-failure-policy "
	      "Fail|Ignore]\n"
	      "                       [--admission-cert-seconds S]]\n"
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
	      "       kupenstack plugin test|run|status ...   (kupenstack plugin help)\n"
	      "       kupenstack policy test DIR...   (admission policies against fixtures)\n",
	      f);
}

static void print_obj(const char *what, const struct ks_cache_obj *o)
{
	printf("%s %s rv=%s\n", what, o->key, o->resource_version);
	fflush(stdout);
}

static void on_add(const struct ks_cache_obj *o, void *d)
{
	(void)d;
	print_obj("ADDED", o);
}

static void on_update(const struct ks_cache_obj *old, const struct ks_cache_obj *o, void *d)
{
	(void)old;
	(void)d;
	print_obj("MODIFIED", o);
}

static void on_delete(const struct ks_cache_obj *o, void *d)
{
	(void)d;
	print_obj("DELETED", o);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct app *a = s->data;

	ks_info("stopping", "signal=%d", signum);
	ks_watch_free(a->watch);
	a->watch = NULL;
	ks_kube_free(a->kube);
	a->kube = NULL;
	ks_http_free(a->http);
	a->http = NULL;
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
}

/* "group/version/resource" into res (pointing into spec, which it edits). */
static int parse_res(char *spec, struct ks_kube_res *res)
{
	char *v = strchr(spec, '/'), *r = v ? strchr(v + 1, '/') : NULL;

	if (!v || !r || !r[1] || v[1] == '/')
		return -EINVAL;
	*v = *r = '\0';
	res->group = spec;
	res->version = v + 1;
	res->resource = r + 1;
	res->namespaced = true;
	return 0;
}

static int run_watch(struct ks_kubeconfig *cfg, const char *ns, struct ks_kube_res *res)
{
	struct app a = { .loop = uv_default_loop() };

	a.http = ks_http_new(a.loop);
	a.kube = ks_kube_new(a.http, cfg);
	a.cache = ks_cache_new();
	ks_cache_add_handler(a.cache,
			     &(struct ks_cache_handler){ on_add, on_update, on_delete, NULL });
	a.watch = ks_watch_new(a.loop, a.kube, a.cache,
			       &(struct ks_watch_opts){ .res = *res, .namespace = ns });
	uv_signal_init(a.loop, &a.sigint);
	uv_signal_init(a.loop, &a.sigterm);
	a.sigint.data = a.sigterm.data = &a;
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	ks_watch_start(a.watch);
	uv_run(a.loop, UV_RUN_DEFAULT);
	ks_cache_free(a.cache);
	uv_loop_close(a.loop);
	return 0;
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kc = getenv("KUBECONFIG"), *ctx = NULL, *ns = NULL;
	struct ks_kubeconfig cfg;
	struct ks_kube_res res;
	enum ks_log_level lvl;
	char *err = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "k:c:n:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			kc = optarg;
			break;
		case 'c':
			ctx = optarg;
			break;
		case 'n':
			ns = optarg;
			break;
		case 'l':
			if (ks_log_parse_level(optarg, &lvl) != 0) {
				fprintf(stderr, "kupenstack: --log-level: unknown level %s\n",
					optarg);
				return 2;
			}
			ks_log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || parse_res(argv[optind], &res) != 0) {
		fprintf(stderr, "kupenstack: watch needs one GROUP/VERSION/RESOURCE\n");
		return 2;
	}
	rc = kc ? ks_kubeconfig_load(&cfg, kc, ctx, &err)
		: ks_kubeconfig_in_cluster(&cfg, NULL, &err);
	if (rc) {
		fprintf(stderr, "kupenstack: %s\n", err);
		free(err);
		return 1;
	}
	rc = run_watch(&cfg, ns, &res);
	ks_kubeconfig_deinit(&cfg);
	return rc;
}

/* The Lua library: $KS_STDLIB, else stdlib/ next to bin/, else the installed copy. */
static char *default_stdlib(void)
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

/* Fill the OpenStack settings of host from the file and cloud named (or the OS_*
 * environment). Returns 0, or 1 after saying why. */
static int load_clouds(struct ks_lua_host *host, const char *file, const char *cloud)
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

static int cmd_exec(int argc, char **argv)
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
	char *stdlib = NULL, *err = NULL;
	enum ks_log_level lvl;
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
			if (ks_log_parse_level(optarg, &lvl) != 0) {
				fprintf(stderr, "kupenstack: --log-level: unknown level %s\n",
					optarg);
				return 2;
			}
			ks_log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "kupenstack: exec needs a FILE.lua\n");
		return 2;
	}
	if (load_clouds(&host, osc, cloud) != 0)
		return 1;
	host.stdlib_dir = stdlib = stdlib ? stdlib : default_stdlib();
	host.http = ks_http_new(host.loop);
	if (kc) {
		if (ks_kubeconfig_load(&cfg, kc, NULL, &err) != 0) {
			fprintf(stderr, "kupenstack: %s\n", err);
			free(err);
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

static int cmd_run(int argc, char **argv)
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
		{ "concurrency", required_argument, NULL, 'j' },
		{ "resync", required_argument, NULL, 'r' },
		{ "os-config", required_argument, NULL, 'o' },
		{ "os-cloud", required_argument, NULL, 'C' },
		{ "cluster", required_argument, NULL, 'K' },
		{ "project-namespaces", required_argument, NULL, 'N' },
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ks_app_opts o = { .kubeconfig = getenv("KUBECONFIG"),
				 .cluster = "kupenstack",
				 .project_namespaces = "labelled",
				 .plugin_max_memory_mb = 256,
				 .plugin_max_instructions = 1e10,
				 .plugin_max_seconds = 1800 };
	struct ks_lua_host clouds = { 0 };
	const char *osc = NULL, *cloud = NULL;
	char *stdlib = NULL, *end;
	enum ks_log_level lvl;
	int c, rc;
	long n;

	while ((c = getopt_long(argc, argv, "k:c:n:p:P:m:LD:j:r:o:C:K:N:s:l:M:I:S:h", opts,
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
				return 2;
			}
			o.renew_deadline = o.lease_duration * 2 / 3;
			o.retry_period = o.lease_duration / 7.5;
			break;
		case 'j':
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64) {
				fprintf(stderr,
					"kupenstack: --concurrency: a number from 1 to 64\n");
				return 2;
			}
			o.concurrency = (unsigned)n;
			break;
		case 'r':
			o.resync = strtod(optarg, &end);
			if (*end || !(o.resync >= 1 && o.resync <= 86400 * 7)) {
				fprintf(stderr,
					"kupenstack: --resync: seconds, from 1 to 604800\n");
				return 2;
			}
			break;
		case 'o':
			osc = optarg;
			break;
		case 'C':
			cloud = optarg;
			break;
		case 'K':
			o.cluster = optarg;
			break;
		case 'N':
			if (strcmp(optarg, "labelled") != 0 && strcmp(optarg, "all") != 0) {
				fprintf(stderr,
					"kupenstack: --project-namespaces: labelled or all\n");
				return 2;
			}
			o.project_namespaces = optarg;
			break;
		case 's':
			free(stdlib);
			stdlib = ks_xstrdup(optarg);
			break;
		case 'l':
			if (ks_log_parse_level(optarg, &lvl) != 0) {
				fprintf(stderr, "kupenstack: --log-level: unknown level %s\n",
					optarg);
				return 2;
			}
			ks_log_set_level(lvl);
			break;
		case 'M':
		case 'I':
		case 'S':
			if (plugin_cap(&o, c, optarg) != 0)
				return 2;
			break;
		case 1000 ... 1004:
			if (ks_admission_flag(&o.admission, c - 1000, optarg) != 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (!o.plugins_dir && !o.plugins_configmaps)) {
		fprintf(stderr, "kupenstack: run needs --plugins DIR or --plugins-configmaps "
				"NAMESPACE, and no other arguments\n");
		free(stdlib);
		return 2;
	}
	if (o.plugins_dir && access(o.plugins_dir, R_OK | X_OK) != 0) {
		fprintf(stderr, "kupenstack: --plugins %s: %s\n", o.plugins_dir, strerror(errno));
		free(stdlib);
		return 1;
	}
	if (load_clouds(&clouds, osc, cloud) != 0) {
		free(stdlib);
		return 1;
	}
	o.clouds_yaml = clouds.clouds_yaml;
	o.cloud = clouds.cloud;
	o.stdlib_dir = stdlib = stdlib ? stdlib : default_stdlib();
	rc = ks_app_run(&o);
	free((char *)clouds.clouds_yaml);
	free(stdlib);
	return rc;
}

static int cmd_plugin(int argc, char **argv)
{
	char *stdlib = default_stdlib();
	int rc = ks_cli_plugin(argc, argv, stdlib);

	free(stdlib);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "version") == 0) {
		printf("kupenstack %s\n", KS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "watch") == 0)
		return cmd_watch(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "exec") == 0)
		return cmd_exec(argc - 1, argv + 1);
	if (strcmp(argv[1], "plugin") == 0)
		return cmd_plugin(argc - 1, argv + 1);
	if (strcmp(argv[1], "policy") == 0)
		return ks_policy_cli(argc - 1, argv + 1);
	fprintf(stderr, "kupenstack: unknown command %s\n", argv[1]);
	usage(stderr);
	return 2;
}
