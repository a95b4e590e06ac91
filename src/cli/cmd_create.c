/* `wisp create [--socket PATH] [wisp run's options] IMAGE [-- ARGS...]` (or
 * --kernel ..., or --config FILE): ask wispd for a VM; prints its id. The
 * options are `wisp run`'s, parsed by the same code into the same VM
 * configuration, which is sent as its JSON form (docs/config.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vmm/vmm.h"

static const char usage[] =
	"usage: wisp create [--socket PATH] [--name NAME] [--mem SIZE] [--cpus N]\n"
	"                   [device options of wisp run] IMAGE [-- ARGS...]\n"
	"       wisp create [--socket PATH] [--name NAME] --kernel KERNEL [--initrd FILE]\n"
	"                   [--cmdline TEXT] [--mem SIZE] [--cpus N] [device options]\n"
	"       wisp create [--socket PATH] [--name NAME] --config FILE\n"
	"device options (as for wisp run): [--rng-device[=SEED]] [--rng] [--disk "
	"PATH[,ro][,id=ID][,LIMITS]]\n"
	"       [--net tap=NAME[,mac=MAC][,LIMITS]] [--console virtio[,sock=PATH]] [--vsock "
	"PATH[,cid=N]]\n";

/* argv without --socket PATH (which only the client knows), into out. */
static int take_socket(int argc, char **argv, char **out)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				out[n++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			client_set_socket(argv[++i]);
		else if (!strncmp(argv[i], "--socket=", 9))
			client_set_socket(argv[i] + 9);
		else
			out[n++] = argv[i];
	}
	out[n] = NULL;
	return n;
}

int cmd_create(int argc, char **argv)
{
	char **av = calloc((size_t)argc + 1, sizeof(char *));
	if (!av)
		return WISP_EXIT_ERROR;
	int ac = take_socket(argc, argv, av);
	struct run_config cfg;
	char err[WISP_ERRLEN];
	int r = run_parse_args(ac, av, &cfg, err, sizeof(err));
	free(av);
	if (!r && (cfg.restore || cfg.timeout_ms || cfg.stats)) {
		snprintf(err, sizeof(err), "create: %s is for 'wisp run' (use 'wisp restore FILE')",
			 cfg.restore ? "--restore"
			 : cfg.stats ? "--stats"
				     : "--timeout");
		r = -1;
	}
	if (r) {
		vm_config_free(&cfg.vm);
		if (r > 0) {
			fputs(usage, stdout);
			return 0;
		}
		/* run_parse_args speaks for `wisp run`. */
		fprintf(stderr, "wisp: %s%s\n%s", strncmp(err, "run: ", 5) ? "" : "create: ",
			strncmp(err, "run: ", 5) ? err : err + 5, usage);
		return WISP_EXIT_ERROR;
	}
	/* wispd opens the files itself, from its own working directory. */
	char *json = vm_config_abs_paths(&cfg.vm) ? NULL : vm_config_to_json(&cfg.vm);
	vm_config_free(&cfg.vm);
	if (!json) {
		fprintf(stderr, "wisp: create: %s\n", "cannot make the paths absolute");
		return WISP_EXIT_ERROR;
	}
	if (!client_init()) {
		free(json);
		return WISP_EXIT_ERROR;
	}
	struct api_reply rep;
	struct json_t *body = jparse(json);
	free(json);
	if (!body || api_call("POST", "/vms", body, &rep))
		return WISP_EXIT_ERROR;
	printf("%s\n", jstr(rep.json, "id"));
	api_reply_free(&rep);
	client_close();
	return 0;
}
