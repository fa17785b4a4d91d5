/*
 * main.c: the table of commands; each command is a file of host/cmd/.
 */
#include <stdio.h>
#include <string.h>

#include "admission/cli.h"
#include "cmd/cmd.h"

static int version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kupenstack %s\n", KS_VERSION);
	return 0;
}

static int help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ks_cmd_usage(stdout);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "version", version },	     { "help", help },
	{ "--help", help },	     { "run", ks_cmd_run },
	{ "watch", ks_cmd_watch },   { "exec", ks_cmd_exec },
	{ "plugin", ks_cmd_plugin }, { "policy", ks_policy_cli },
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		ks_cmd_usage(stderr);
		return 2;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kupenstack: unknown command %s\n", argv[1]);
	ks_cmd_usage(stderr);
	return 2;
}
