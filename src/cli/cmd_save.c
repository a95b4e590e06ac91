/* `wisp save VM FILE`: write a snapshot of a running (or paused) VM. The
 * VM runs on afterwards; a failed save leaves FILE as it was. The VM is a
 * daemon VM, or a `wisp run --name NAME` VM reached on its own control
 * socket (run_control.c). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp save [--socket PATH] VM FILE\n";

void client_abs_path(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)))
		snprintf(out, len, "%.2000s/%.2000s", cwd, path);
	else
		snprintf(out, len, "%s", path);
}

int cmd_save(int argc, char **argv)
{
	int code;
	if (client_options(argc, argv, usage, NULL, 0, NULL, &code))
		return code;
	if (argc - optind != 2) {
		fprintf(stderr, "wisp: save: %s\n%s",
			argc - optind < 2 ? "give a VM and a file" : "too many arguments", usage);
		return WISP_EXIT_ERROR;
	}
	const char *vm = argv[optind];
	char file[PATH_MAX];
	client_abs_path(argv[optind + 1], file, sizeof(file));
	/* A `wisp run --name` VM answers on its own socket, without wispd. */
	if (run_control_exists(vm))
		return run_control_save(vm, file);
	char path[128];
	if (client_vm_path(vm, "save", path, sizeof(path)))
		return WISP_EXIT_ERROR;
	if (!client_init())
		return WISP_EXIT_ERROR;
	struct api_reply r;
	struct json_t *body = jnew_object();
	jset_str(body, "file", file);
	if (api_call("POST", path, body, &r))
		return WISP_EXIT_ERROR;
	printf("saved %s to %s (%.1f MiB of memory written, %.2f ms)\n", jstr(r.json, "name"), file,
	       jnum(r.json, "memory_bytes") / 1048576.0, jnum(r.json, "total_ms"));
	code = 0;
	api_reply_free(&r);
	client_close();
	return code;
}
