/* `wisp create [--name N] [--mem M] [--cpus C] IMAGE [-- ARGS...]`: ask wispd
 * for a VM; prints its id. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp create [--name NAME] [--mem SIZE] [--cpus N] "
			    "[--socket PATH] IMAGE [-- ARGS...]\n";

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"mem", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		CLIENT_OPTIONS,
		{0},
	};
	const char *name = NULL, *mem = NULL;
	uint64_t cpus = 0;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+n:m:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'm':
			mem = optarg;
			break;
		case 'c':
			if (opt_parse_uint(optarg, 1, 64, &cpus)) {
				fprintf(stderr,
					"wisp: create: --cpus '%s': must be a number from 1 to "
					"64\n%s",
					optarg, usage);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'S':
			client_set_socket(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return client_bad_option("create", argv, usage);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "wisp: create: no image given\n%s", usage);
		return WISP_EXIT_ERROR;
	}
	/* wispd opens the image itself, from its own working directory. */
	char image[PATH_MAX];
	client_abs_path(argv[optind++], image, sizeof(image));
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;

	if (!client_init())
		return WISP_EXIT_ERROR;
	struct api_reply r;
	struct json_t *body = jnew_object(), *args = jnew_array();
	jset_str(body, "image", image);
	if (name)
		jset_str(body, "name", name);
	if (mem)
		jset_str(body, "mem", mem);
	if (cpus)
		jset_int(body, "cpus", (long long)cpus);
	for (int i = optind; i < argc; i++)
		jpush_str(args, argv[i]);
	jset(body, "args", args);
	if (api_call("POST", "/vms", body, &r))
		return WISP_EXIT_ERROR;
	printf("%s\n", jstr(r.json, "id"));
	api_reply_free(&r);
	client_close();
	return 0;
}
