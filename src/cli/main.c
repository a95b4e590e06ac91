/* `wisp`: the command-line entry point. Each verb lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef WISP_VERSION
#define WISP_VERSION "dev"
#endif

static const char help[] =
	"usage: wisp VERB [options]\n"
	"\n"
	"  run      boot an image in the foreground: wisp run [--mem SIZE] [--cpus N]\n"
	"           [--timeout DURATION] [--stats] IMAGE [-- ARGS...]\n"
	"  version  print the version\n"
	"  help     this text\n"
	"\n"
	"See docs/cli.md for every verb, option and exit code.\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(help, stderr);
		return WISP_EXIT_ERROR;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(verb, "version") || !strcmp(verb, "--version")) {
		printf("wisp %s\n", WISP_VERSION);
		return 0;
	}
	if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
		fputs(help, stdout);
		return 0;
	}
	fprintf(stderr, "wisp: unknown verb '%s' (try 'wisp help')\n", verb);
	return WISP_EXIT_ERROR;
}
