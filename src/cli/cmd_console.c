/* `wisp console [-f] VM`: the VM's console output, from its ring (the
 * newest 64 KiB by default); -f keeps printing new output until the VM
 * stops. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp console [-f|--follow] [--socket PATH] VM\n";

int cmd_console(int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'}, CLIENT_OPTIONS, {0}};
	bool follow = false;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
		if (c == 'f')
			follow = true;
		else if (c == 'S')
			client_set_socket(optarg);
		else if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		} else
			return client_bad_option("console", argv, usage);
	}
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
