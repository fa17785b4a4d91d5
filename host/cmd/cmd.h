#pragma once
/*
 * cmd.h: the commands of bin/kupenstack (host/main.c dispatches to them), and what they
 * share: the log level, the kubeconfig or in-cluster account, the Lua library's place,
 * and the operator's settings (--set, --set-file). Each command parses its own argv
 * (getopt_long) and returns the process's exit status: 0, 1 after a runtime error it
 * printed, 2 for a usage error.
 */
#include <stdbool.h>
#include <stdio.h>

#include "kubeconfig.h"
#include "lua/engine.h"

int ks_cmd_run(int argc, char **argv);
int ks_cmd_watch(int argc, char **argv);
int ks_cmd_exec(int argc, char **argv);
/* argv[0] is "plugin": `kupenstack plugin test|run|status`, the commands a plugin author
 * and an operator use on plugins outside the running host (cmd/plugin.c). */
int ks_cmd_plugin(int argc, char **argv);
/* The usage of every command, to f. */
void ks_cmd_usage(FILE *f);

/* --log-level ARG: set it, or say why not. Returns 0, or 2 (a usage error). */
int ks_cmd_log_level(const char *arg);
/* The Lua library: $KS_STDLIB, else stdlib/ next to bin/, else the installed copy (free
 * it). */
char *ks_cmd_stdlib(void);
/* cfg from the kubeconfig file kc (context ctx, NULL: its current one), or the in-cluster
 * account when kc is NULL. Returns 0, or 1 after printing why. */
int ks_cmd_kubeconfig(struct ks_kubeconfig *cfg, const char *kc, const char *ctx);

/* The operator's settings (lua/engine.h: struct ks_setting), from --set NAME=VALUE and
 * --set-file NAME=FILE in order; a later one of a name replaces the earlier. */
struct ks_cmd_settings {
	struct ks_setting *v;
	size_t n;
};
/* Add the setting of --set (file false) or --set-file (file true) ARG, "NAME=...", to s.
 * NAME is [a-z][a-z0-9_]*, at most 63 characters; a file at most 1 MiB. Returns 0, 1 (a
 * file that cannot be read, said) or 2 (a usage error, said). */
int ks_cmd_setting(struct ks_cmd_settings *s, const char *arg, bool file);
void ks_cmd_settings_free(struct ks_cmd_settings *s);

/* The options `run` and `exec` share, as their getopt_long tables return them: 'E'
 * --set, 'F' --set-file, 's' --stdlib, 'l' --log-level. */
struct ks_cmd_shared {
	struct ks_cmd_settings settings;
	char *stdlib; /* --stdlib, or NULL */
};
/* Take option c (its argument arg) into sh when it is a shared one: returns 0 or the exit
 * status of a usage error (said); -1 when c is none of them. */
int ks_cmd_shared_opt(struct ks_cmd_shared *sh, int c, const char *arg);
void ks_cmd_shared_free(struct ks_cmd_shared *sh);
