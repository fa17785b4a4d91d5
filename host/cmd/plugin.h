#pragma once
/*
 * plugin.h: `kupenstack plugin test|run|status`, the commands a plugin author and an
 * operator use on plugins outside the running host: fixture tests (fixture/fixture.h), dry
 * runs against a live cluster (cmd/dryrun_plugin.h), and the plugins a running host has
 * loaded or refused (its /metrics, plugin/plugin_metrics.h).
 */

/*
 * argv[0] is "plugin"; stdlib is the Lua library's directory unless --stdlib names
 * another. Returns the exit status: 0, 1 (a failure, said), 2 (a usage error).
 */
int ks_cli_plugin(int argc, char **argv, const char *stdlib);
