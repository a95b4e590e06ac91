/* `wisp console [-f] VM`: the VM's console output, from its ring (the
 * newest 64 KiB by default); -f keeps printing new output until the VM
 * stops. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp console [-f|--follow] [--socket PATH] VM\n";

int cmd_console(int argc, char **argv)
{
	bool follow = false;
	int code;
	if (client_options(argc, argv, usage, "follow", 'f', &follow, &code))
		return code;
	if (optind != argc - 1) {
		fprintf(stderr, "wisp: console: %s\n%s",
			optind >= argc ? "no VM given" : "give exactly one VM", usage);
		return WISP_EXIT_ERROR;
	}
	char path[160];
	if (client_vm_path(argv[optind], follow ? "console?follow=1" : "console", path,
			   sizeof(path)))
		return WISP_EXIT_ERROR;
	int r = api_stream(path);
	client_close();
	return r ? WISP_EXIT_ERROR : 0;
}
