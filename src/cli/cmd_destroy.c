/* `wisp destroy VM...`: stop VMs and forget them. The teardown runs in the
 * background; the name is free again at once. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp destroy [--socket PATH] VM...\n";

int cmd_destroy(int argc, char **argv)
{
	int code;
	if (client_options(argc, argv, usage, NULL, 0, NULL, &code))
		return code;
	if (optind >= argc) {
		fprintf(stderr, "wisp: destroy: no VM given\n%s", usage);
		return WISP_EXIT_ERROR;
	}
	code = 0;
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
