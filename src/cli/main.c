/* `wisp`: the command-line entry point. Each verb lives in its own file and
 * is listed once in the table below. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef WISP_VERSION
#define WISP_VERSION "dev"
#endif

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("wisp %s\n", WISP_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} verbs[] = {
	{"run", cmd_run, "boot an image in the foreground (no daemon)"},
	{"create", cmd_create, "create a VM under wispd (prints its id)"},
	{"list", cmd_list, "list wispd's VMs"},
	{"console", cmd_console, "print a VM's console output (-f: follow it)"},
	{"stats", cmd_stats, "exit counts, memory and boot time of a VM, or the daemon's"},
	{"pause", cmd_pause, "stop running a VM's vCPU"},
	{"resume", cmd_resume, "run a paused VM again"},
	{"destroy", cmd_destroy, "stop a VM and forget it"},
	{"daemon", cmd_daemon, "start wispd, the daemon behind the verbs above"},
	{"version", cmd_version, "print the version"},
	{"help", cmd_help, "list the verbs"},
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: wisp VERB [options]   (wisp VERB --help for a verb's options)\n\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		printf("  %-9s %s\n", verbs[i].name, verbs[i].summary);
	printf("\nSee docs/cli.md for every verb, option and exit code.\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(argc, argv);
		return WISP_EXIT_ERROR;
	}
	const char *verb = argv[1];
	if (!strcmp(verb, "--version"))
		verb = "version";
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h"))
		verb = "help";
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verb, verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "wisp: unknown verb '%s' (try 'wisp help')\n", verb);
	return WISP_EXIT_ERROR;
}
