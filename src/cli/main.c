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

/* Verbs that only talk HTTP to wispd. The lean, static `wisp` (built with
 * WISP_LEAN) does not contain them: it runs `wisp-client`, the dynamic build
 * next to it, which can load libcurl (a static binary cannot dlopen safely).
 * Their cost is libcurl's loading, 5-12 ms, so one more exec is noise, while
 * `wisp run` starts ~15% faster and ~35% smaller than a dynamic binary. */
#ifdef WISP_LEAN
#define CLIENT_VERB(fn) NULL
#else
#define CLIENT_VERB(fn) fn
#endif

static const struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} verbs[] = {
	{"run", cmd_run, "boot an image in the foreground (no daemon)"},
	{"create", CLIENT_VERB(cmd_create), "create a VM under wispd (prints its id)"},
	{"list", CLIENT_VERB(cmd_list), "list wispd's VMs"},
	{"console", CLIENT_VERB(cmd_console), "print a VM's console output (-f: follow it)"},
	{"stats", CLIENT_VERB(cmd_stats),
	 "exit counts, memory and boot time of a VM, or the daemon's"},
	{"top", CLIENT_VERB(cmd_top), "a live view of the VMs: CPU, exits/s, memory, I/O"},
	{"pause", CLIENT_VERB(cmd_pause), "stop running a VM's vCPU"},
	{"resume", CLIENT_VERB(cmd_resume), "run a paused VM again"},
	{"destroy", CLIENT_VERB(cmd_destroy), "stop a VM and forget it"},
	{"save", cmd_save, "write a snapshot of a VM to a file"},
	{"restore", CLIENT_VERB(cmd_restore), "create a VM from a snapshot (prints its id)"},
	{"clone", CLIENT_VERB(cmd_clone), "create K VMs from one snapshot, sharing its pages"},
	{"migrate", CLIENT_VERB(cmd_migrate), "move a running VM to another host (live migration)"},
	{"receive", CLIENT_VERB(cmd_receive), "wait for a VM migrated to this host"},
	{"daemon", cmd_daemon, "start wispd, the daemon behind the verbs above"},
	{"check", cmd_check, "say whether this host can run Wisp VMs, and if not why"},
	{"image", cmd_image, "build a small Linux image for one application (Tinyx)"},
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

char **cli_argv;

int main(int argc, char **argv)
{
	cli_argv = argv;
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
			return verbs[i].fn ? verbs[i].fn(argc - 1, argv + 1) : client_exec();
	fprintf(stderr, "wisp: unknown verb '%s' (try 'wisp help')\n", verb);
	return WISP_EXIT_ERROR;
}
