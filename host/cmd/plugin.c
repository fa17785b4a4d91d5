/*
 * plugin.c: `kupenstack plugin test|run|status`: options, and the status table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "ks.h"
#include "log.h"
#include "cmd/cmd.h"
#include "cmd/vet.h"
#include "fixture/fixture.h"
#include "cmd/dryrun_plugin.h"
#include "scrape.h"

#define USAGE                                                                                    \
	"usage: kupenstack plugin test DIR [--plugin FILE [--vet]] [--stdlib DIR] [--log-level " \
	"L]\n"                                                                                   \
	"       kupenstack plugin run FILE --dry-run [--once] [--kubeconfig F] [--context C]\n"  \
	"                             [--namespace N] [--set NAME=VALUE] [--set-file NAME=F]\n"  \
	"                             [--stdlib DIR] [--log-level L]\n"                          \
	"       kupenstack plugin status [--metrics-addr HOST:PORT]\n"

enum {
	OPT_PLUGIN = 256,
	OPT_STDLIB,
	OPT_LOG,
	OPT_DRY,
	OPT_ONCE,
	OPT_KUBECONFIG,
	OPT_CONTEXT,
	OPT_NAMESPACE,
	OPT_SET,
	OPT_SET_FILE,
	OPT_METRICS,
	OPT_VET,
	OPT_HELP
};

static const struct option options[] = {
	{ "plugin", required_argument, NULL, OPT_PLUGIN },
	{ "stdlib", required_argument, NULL, OPT_STDLIB },
	{ "log-level", required_argument, NULL, OPT_LOG },
	{ "dry-run", no_argument, NULL, OPT_DRY },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "context", required_argument, NULL, OPT_CONTEXT },
	{ "namespace", required_argument, NULL, OPT_NAMESPACE },
	{ "set", required_argument, NULL, OPT_SET },
	{ "set-file", required_argument, NULL, OPT_SET_FILE },
	{ "metrics-addr", required_argument, NULL, OPT_METRICS },
	{ "vet", no_argument, NULL, OPT_VET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

struct args {
	const char *plugin, *stdlib, *kubeconfig, *context, *namespace;
	struct ks_cmd_settings settings;
	const char *metrics_addr;
	bool dry_run, once, vet;
	const char *allowed; /* the options this subcommand takes, as "|name|name|" */
};

/* Parse argv into a; returns 0, or the exit status (usage printed). */
static int parse(int argc, char **argv, struct args *a)
{
	char needle[32];
	int c, i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, &i)) != -1) {
		if (c == OPT_HELP) {
			fputs(USAGE, stdout);
			return -1;
		}
		snprintf(needle, sizeof(needle), "|%s|", c == '?' ? "?" : options[i].name);
		if (c == '?' || !strstr(a->allowed, needle)) {
			if (c != '?')
				fprintf(stderr,
					"kupenstack plugin %s: --%s is not an option here\n",
					argv[0], options[i].name);
			fputs(USAGE, stderr);
			return 2;
		}
		switch (c) {
		case OPT_PLUGIN:
			a->plugin = optarg;
			break;
		case OPT_STDLIB:
			a->stdlib = optarg;
			break;
		case OPT_DRY:
			a->dry_run = true;
			break;
		case OPT_ONCE:
			a->once = true;
			break;
		case OPT_VET:
			a->vet = true;
			break;
		case OPT_KUBECONFIG:
			a->kubeconfig = optarg;
			break;
		case OPT_CONTEXT:
			a->context = optarg;
			break;
		case OPT_NAMESPACE:
			a->namespace = optarg;
			break;
		case OPT_SET:
		case OPT_SET_FILE: {
			int rc = ks_cmd_setting(&a->settings, optarg, c == OPT_SET_FILE);
			if (rc != 0)
				return rc;
			break;
		}
		case OPT_METRICS:
			a->metrics_addr = optarg;
			break;
		case OPT_LOG:
			if (ks_cmd_log_level(optarg) != 0)
				return 2;
			break;
		}
	}
	return 0;
}

static int cmd_test(int argc, char **argv, const char *stdlib)
{
	struct args a = { .allowed = "|plugin|stdlib|log-level|vet|" };
	int rc;

	ks_log_set_level(KS_LOG_ERROR); /* plugin logs only when asked (--log-level) */
	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (optind != argc - 1) {
		fprintf(stderr, "kupenstack plugin test: needs one DIR\n" USAGE);
		return 2;
	}
	if (a.vet && !a.plugin) {
		fprintf(stderr, "kupenstack plugin test: --vet needs --plugin FILE\n" USAGE);
		return 2;
	}
	if (a.vet) /* hot reload's check (cmd/vet.h): the first failure, on stdout */
		return ks_cmd_vet_child(argv[optind], a.plugin, a.stdlib ? a.stdlib : stdlib);
	return ks_fixture_run(argv[optind], &(struct ks_fixture_opts){
						    .stdlib_dir = a.stdlib ? a.stdlib : stdlib,
						    .plugin = a.plugin,
					    });
}

static int cmd_run(int argc, char **argv, const char *stdlib)
{
	struct args a = { .allowed = "|stdlib|log-level|dry-run|once|kubeconfig|context|"
				     "namespace|set|set-file|" };
	int rc;

	a.kubeconfig = getenv("KUBECONFIG");
	rc = parse(argc, argv, &a);
	if (rc) {
		rc = rc < 0 ? 0 : rc;
	} else if (optind != argc - 1 || !a.dry_run) {
		fprintf(stderr, "kupenstack plugin run: needs one FILE and --dry-run (to run "
				"plugins for real: kupenstack run --plugins DIR)\n" USAGE);
		rc = 2;
	} else {
		rc = ks_lua_dryrun(&(struct ks_lua_dryrun_opts){
			.file = argv[optind],
			.kubeconfig = a.kubeconfig,
			.context = a.context,
			.namespace = a.namespace,
			.stdlib_dir = a.stdlib ? a.stdlib : stdlib,
			.settings = a.settings.v,
			.nsettings = a.settings.n,
			.once = a.once,
		});
	}
	ks_cmd_settings_free(&a.settings);
	return rc;
}

/* ---- status ------------------------------------------------------------------------- */

static const char *label(const cJSON *s, const char *k)
{
	const char *v =
		cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "labels"), k));

	return v ? v : "";
}

/* The row of plugin in rows (created on first use, in name order). */
static cJSON *row_of(cJSON *rows, const char *plugin)
{
	cJSON *r = cJSON_GetObjectItem(rows, plugin), *at;
	int i = 0;

	if (r)
		return r;
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "plugin", plugin);
	cJSON_ArrayForEach(at, rows)
	{
		if (strcmp(at->string, plugin) > 0)
			break;
		i++;
	}
	r->string = ks_xstrdup(plugin); /* the key, freed with r */
	if (at)
		cJSON_InsertItemInArray(rows, i, r);
	else
		cJSON_AddItemToArray(rows, r);
	return r;
}

static void set_str(cJSON *row, const char *k, const char *v)
{
	cJSON_DeleteItemFromObject(row, k);
	cJSON_AddStringToObject(row, k, v);
}

/* The plugins' rows, by plugin name, from the samples. */
static cJSON *rows_of(const cJSON *samples)
{
	cJSON *rows = cJSON_CreateObject(), *r;
	const cJSON *s;
	const char *name;
	double v;

	cJSON_ArrayForEach(s, samples)
	{
		name = cJSON_GetStringValue(cJSON_GetObjectItem(s, "name"));
		v = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "value"));
		if (!name || strncmp(name, "kupenstack_plugin_", 18) != 0 || !*label(s, "plugin"))
			continue;
		name += 18;
		if (strcmp(name, "info") == 0 && v == 1) {
			r = row_of(rows, label(s, "plugin"));
			set_str(r, "kind", label(s, "kind"));
			set_str(r, "state", label(s, "state"));
			set_str(r, "source", label(s, "source"));
		} else if (strcmp(name, "last_error_info") == 0 && v == 1) {
			set_str(row_of(rows, label(s, "plugin")), "error", label(s, "error"));
		} else if (strcmp(name, "load_errors_total") == 0 ||
			   strcmp(name, "reloads_total") == 0 ||
			   strcmp(name, "memory_bytes") == 0 ||
			   strcmp(name, "loaded_timestamp_seconds") == 0) {
			r = row_of(rows, label(s, "plugin"));
			cJSON_DeleteItemFromObject(r, name);
			cJSON_AddNumberToObject(r, name, v);
		}
	}
	return rows;
}

static const char *str(const cJSON *row, const char *k, const char *def)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(row, k));

	return v && *v ? v : def;
}

/* The number k of row, 0 when absent. */
static double num(const cJSON *row, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(row, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Print r unless its plugin is gone; returns whether it printed. */
static int print_row(const cJSON *r)
{
	time_t t = (time_t)num(r, "loaded_timestamp_seconds");
	char when[32] = "-", kib[32] = "-";
	struct tm tm;

	if (t > 0) {
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (num(r, "memory_bytes") > 0)
		snprintf(kib, sizeof(kib), "%.0f KiB", num(r, "memory_bytes") / 1024);
	if (!cJSON_GetObjectItem(r, "state"))
		return 0; /* removed: its series are all 0 */
	printf("%-20s %-16s %-8s %-21s %7.0f %7.0f %9s  %s\n", str(r, "plugin", "?"),
	       str(r, "kind", "-"), str(r, "state", "-"), when, num(r, "reloads_total"),
	       num(r, "load_errors_total"), kib, str(r, "source", "-"));
	if (strcmp(str(r, "state", ""), "refused") == 0)
		printf("    refused: %s%s\n", str(r, "error", "(no message)"),
		       t > 0 ? " (the previous version keeps running)" : "");
	return 1;
}

static int cmd_status(int argc, char **argv)
{
	struct args a = { .allowed = "|metrics-addr|", .metrics_addr = "127.0.0.1:8080" };
	char *text, *err = NULL;
	cJSON *samples, *rows;
	const cJSON *r;
	size_t len;
	int rc, n = 0;

	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (optind != argc) {
		fputs(USAGE, stderr);
		return 2;
	}
	text = ks_scrape_get(a.metrics_addr, &len, &err);
	if (!text) {
		fprintf(stderr,
			"kupenstack plugin status: cannot ask the host at %s (--metrics-addr): "
			"%s\n",
			a.metrics_addr, err);
		free(err);
		return 1;
	}
	samples = ks_scrape_parse(text, len);
	rows = rows_of(samples);
	printf("%-20s %-16s %-8s %-21s %7s %7s %9s  %s\n", "PLUGIN", "KIND", "STATE", "LOADED AT",
	       "RELOADS", "ERRORS", "MEMORY", "SOURCE");
	cJSON_ArrayForEach(r, rows)
	{
		n += print_row(r);
	}
	if (n == 0)
		printf("(the host at %s reports no plugins)\n", a.metrics_addr);
	cJSON_Delete(rows);
	cJSON_Delete(samples);
	free(text);
	return 0;
}

int ks_cmd_plugin(int argc, char **argv)
{
	char *stdlib;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(USAGE, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	stdlib = ks_cmd_stdlib();
	if (strcmp(argv[1], "test") == 0) {
		rc = cmd_test(argc - 1, argv + 1, stdlib);
	} else if (strcmp(argv[1], "run") == 0) {
		rc = cmd_run(argc - 1, argv + 1, stdlib);
	} else if (strcmp(argv[1], "status") == 0) {
		rc = cmd_status(argc - 1, argv + 1);
	} else {
		fprintf(stderr, "kupenstack plugin: unknown command %s\n" USAGE, argv[1]);
		rc = 2;
	}
	free(stdlib);
	return rc;
}
