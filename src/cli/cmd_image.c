/* `wisp image`: build a Tinyx-style image for one application, list what is
 * in one and why, or say how to boot it (src/image/, docs/image.md). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "image/image.h"

static const char usage[] =
	"usage: wisp image build (--package NAME | --binary PATH | --rootfs DIR) -o OUT\n"
	"                        [--cmd \"CMD ARGS\"] [--env K=V]... [--workdir DIR]\n"
	"                        [--user NAME|UID[:GID]] [--format initramfs|ext4] [--quiet]\n"
	"       wisp image inspect IMAGE     what is inside and why\n"
	"       wisp image boot-info IMAGE   its format and kernel command line fragment\n";

/* Interrupted: no half-written image is left behind. */
static void on_signal(int sig)
{
	image_build_interrupted();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Progress on stderr: on a terminal the step in a live line ("download:
 * ..."), then the image's size, time and rate; elsewhere that one line. */
static void print_progress(void *ctx, const char *step, const char *what)
{
	char text[400];
	snprintf(text, sizeof(text), "%s: %s", step, what);
	progress_step(ctx, text);
}

static int image_build_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{"package", required_argument, NULL, 'p'},
		{"binary", required_argument, NULL, 'b'},
		{"rootfs", required_argument, NULL, 'r'},
		{"cmd", required_argument, NULL, 'c'},
		{"env", required_argument, NULL, 'e'},
		{"workdir", required_argument, NULL, 'w'},
		{"user", required_argument, NULL, 'u'},
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct progress pg;
	bool quiet = false;
	struct image_spec s = {
		.format = IMAGE_INITRAMFS, .progress = print_progress, .progress_ctx = &pg};
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			s.package = optarg;
			break;
		case 'b':
			s.binary = optarg;
			break;
		case 'r':
			s.rootfs = optarg;
			break;
		case 'c':
			s.cmd = optarg;
			break;
		case 'e':
			if (s.nr_env == IMAGE_MAX_ENV) {
				fprintf(stderr, "wisp image: more than %d --env\n", IMAGE_MAX_ENV);
				return WISP_EXIT_ERROR;
			}
			s.env[s.nr_env++] = optarg;
			break;
		case 'w':
			s.workdir = optarg;
			break;
		case 'u':
			s.user = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "initramfs"))
				s.format = IMAGE_INITRAMFS;
			else if (!strcmp(optarg, "ext4"))
				s.format = IMAGE_EXT4;
			else {
				fprintf(stderr,
					"wisp image: --format '%s': want initramfs or ext4\n",
					optarg);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'o':
			s.out = optarg;
			break;
		case 'q':
			s.progress = NULL;
			quiet = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case ':':
			fprintf(stderr, "wisp image: %s needs a value\n%s", argv[optind - 1],
				usage);
			return WISP_EXIT_ERROR;
		default:
			fprintf(stderr, "wisp image: unknown option '%s'\n%s", argv[optind - 1],
				usage);
			return WISP_EXIT_ERROR;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wisp image build: unexpected argument '%s'\n%s", argv[optind],
			usage);
		return WISP_EXIT_ERROR;
	}
	char err[1024];
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	char what[160];
	snprintf(what, sizeof(what), "wisp image build '%.120s'", s.out ? s.out : "");
	progress_start(&pg, what, 0, quiet);
	if (image_build(&s, err, sizeof(err))) {
		progress_end(&pg, false);
		fprintf(stderr, "wisp image: %s\n", err);
		return 1;
	}
	struct stat st;
	if (stat(s.out, &st) == 0)
		progress_update(&pg, (uint64_t)st.st_size);
	progress_end(&pg, true);
	return 0;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? WISP_EXIT_ERROR : 0;
	}
	if (!strcmp(argv[1], "build"))
		return image_build_cmd(argc - 1, argv + 1);
	char err[1024];
	if (!strcmp(argv[1], "inspect") && argc == 3) {
		char *text;
		if (image_inspect(argv[2], &text, err, sizeof(err))) {
			fprintf(stderr, "wisp image: %s\n", err);
			return 1;
		}
		fputs(text, stdout);
		free(text);
		return 0;
	}
	if (!strcmp(argv[1], "boot-info") && argc == 3) {
		struct image_boot b;
		if (image_boot_info(argv[2], &b, err, sizeof(err))) {
			fprintf(stderr, "wisp image: %s\n", err);
			return 1;
		}
		printf("format=%s\ncmdline=%s\n", b.format == IMAGE_EXT4 ? "ext4" : "initramfs",
		       b.cmdline);
		return 0;
	}
	fprintf(stderr, "wisp image: unknown command or arguments\n%s", usage);
	return WISP_EXIT_ERROR;
}
