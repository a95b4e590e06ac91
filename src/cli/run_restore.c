/* `wisp run --restore FILE [--name NAME] [--timeout D] [--stats] [--verify]`:
 * a saved VM back in the foreground. The snapshot's CONFIG record holds the
 * `wisp run` options that built the VM (image or kernel, memory, vCPUs,
 * devices); they are parsed again, the same VM is built with the same
 * devices in the same order, and the saved state is loaded into it instead
 * of booting. The console is this process's terminal, as for any run. A
 * daemon VM's snapshot ("wisp-vmm": a unikernel without devices) can be
 * restored this way too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapshot/snapshot.h"

int run_restore(struct run_config *cfg)
{
	char err[WISP_ERRLEN];
	struct snap_file f;
	if (snap_open(cfg->restore, &f, err, sizeof(err))) {
		fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, err);
		snap_close(&f);
		return WISP_EXIT_ERROR;
	}
	int code = WISP_EXIT_ERROR;
	struct run_config saved;
	memset(&saved, 0, sizeof(saved));
	char *argv[128];
	int argc = 0;
	const char *c = f.img.config, *end = c ? c + f.img.config_len : NULL;
	if (c && !strcmp(c, "wisp-vmm")) {
		/* A daemon VM: a unikernel with one vCPU and no devices. */
		saved.mem = f.hdr.mem_size;
		saved.cpus = 1;
		saved.cmdline = opt_join_args(0, NULL);
	} else if (c && !strcmp(c, "wisp-run")) {
		argv[argc++] = "run";
		for (c += strlen(c) + 1; c < end && argc < 127; c += strlen(c) + 1)
			argv[argc++] = (char *)c;
		argv[argc] = NULL;
		int r = run_parse_args(argc, argv, &saved, err, sizeof(err));
		if (r) {
			fprintf(stderr, "wisp: snapshot '%s': its VM's options do not parse: %s\n",
				cfg->restore, r > 0 ? "--help" : err);
			goto out;
		}
		if (saved.restore) {
			fprintf(stderr, "wisp: snapshot '%s': its options ask for a restore\n",
				cfg->restore);
			goto out;
		}
	} else {
		fprintf(stderr, "wisp: snapshot '%s': it does not say how its VM was built (%s)\n",
			cfg->restore, c ? c : "no configuration record");
		goto out;
	}
	if (saved.mem != f.hdr.mem_size || saved.cpus != f.img.nr_vcpus) {
		fprintf(stderr,
			"wisp: snapshot '%s': its options and its state disagree on the "
			"VM's size\n",
			cfg->restore);
		goto out;
	}
	/* This run's own settings. */
	saved.name = cfg->name;
	saved.timeout_ms = cfg->timeout_ms;
	saved.stats = cfg->stats;
	saved.verify = cfg->verify;
	saved.restore = cfg->restore;
	saved.snap = &f;
	saved.config = malloc(f.img.config_len);
	if (!saved.config) {
		fprintf(stderr, "wisp: out of memory\n");
		goto out;
	}
	memcpy(saved.config, f.img.config, f.img.config_len);
	saved.config_len = f.img.config_len;
	code = saved.kernel ? run_linux(&saved) : run_unikernel(&saved);
out:
	free(saved.cmdline);
	free(saved.config);
	virtio_args_free(&saved.virtio);
	snap_close(&f);
	return code;
}
