/* main.c: argv, signals and uv_run only. */
#include <stdio.h>

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kupenstack: not yet wired\n");
	return 1;
}
