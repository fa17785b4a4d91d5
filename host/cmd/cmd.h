#pragma once
/*
 * cmd.h: the commands of bin/kupenstack (host/main.c dispatches to them), and what they
 * share: the log level, the kubeconfig or in-cluster account, the Lua library's place,
 * and the OpenStack settings file. Each command parses its own argv (getopt_long) and
 * returns the process's exit status: 0, 1 after a runtime error it printed, 2 for a
 * usage error.
 */
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
/* Fill the OpenStack settings of host from the file and cloud named (or the OS_*
 * environment); host->clouds_yaml is then the file's text (free it). Returns 0, or 1
 * after saying why. */
int ks_cmd_clouds(struct ks_lua_host *host, const char *file, const char *cloud);
