/*
 * watch.c: `kupenstack watch GROUP/VERSION/RESOURCE`: lists and watches one kind through
 * the host's client, reflector and cache, and prints a line per add, update and delete:
 * a way to see what the host sees.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cache.h"
#include "cmd/cmd.h"
#include "http.h"
#include "kube.h"
#include "log.h"
#include "watch.h"

struct app {
	uv_loop_t *loop;
	uv_signal_t sigint, sigterm;
	struct ks_http *http;
	struct ks_kube *kube;
	struct ks_cache *cache;
	struct ks_watch *watch;
};

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

int ks_cmd_watch(int argc, char **argv)
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
	if (optind != argc - 1 || parse_res(argv[optind], &res) != 0) {
		fprintf(stderr, "kupenstack: watch needs one GROUP/VERSION/RESOURCE\n");
		return 2;
	}
	if (ks_cmd_kubeconfig(&cfg, kc, ctx) != 0)
		return 1;
	rc = run_watch(&cfg, ns, &res);
	ks_kubeconfig_deinit(&cfg);
	return rc;
}
