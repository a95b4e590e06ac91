/* `wisp destroy VM...`: stop VMs and forget them. The teardown runs in the
 * background; the name is free again at once. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp destroy [--socket PATH] VM...\n";

int cmd_destroy(int argc, char **argv)
{
	static const struct option opts[] = {CLIENT_OPTIONS, {0}};
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'S')
			client_set_socket(optarg);
		else if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		} else
			return client_bad_option("destroy", argv, usage);
	}
	if (optind >= argc) {
		fprintf(stderr, "wisp: destroy: no VM given\n%s", usage);
		return WISP_EXIT_ERROR;
	}
	int code = 0;
	for (int i = optind; i < argc; i++) {
		char path[128];
		struct api_reply r;
		if (client_vm_path(argv[i], NULL, path, sizeof(path)) ||
		    api_call("DELETE", path, NULL, &r)) {
			code = WISP_EXIT_ERROR;
			continue;
		}
		api_reply_free(&r);
	}
	client_close();
	return code;
}
