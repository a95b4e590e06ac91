/* `wisp run --restore FILE [--name NAME] [--timeout D] [--stats] [--verify]
 * [--disk PATH] [--net tap=NAME] [--vsock PATH] [--console virtio,sock=PATH]`:
 * a saved VM back in the foreground. The snapshot's CONFIG record holds the
 * VM's configuration; the same VM is built from it by the one builder and
 * the saved state is loaded into it instead of booting.
 *
 * A snapshot file is untrusted: it never decides which host file, socket or
 * TAP this process opens. The user gives the host side of each such device
 * again, and it must match the recorded configuration (kinds, order, disk
 * size), with one line per mismatch. Older files record an argument vector
 * ("wisp-run"); it is parsed into a configuration and treated the same way. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "snapshot/snapshot.h"

/* The configuration recorded in f into rec; -1 (printed) if there is none
 * we can read. */
static int recorded_config(const struct run_config *cfg, const struct snap_file *f,
			   struct vm_config *rec)
{
	char err[WISP_ERRLEN];
	const char *c = f->img.config, *end = c ? c + f->img.config_len : NULL;
	int r = snap_config_record(f, rec, err, sizeof(err));
	if (r != -ENOENT) {
		if (r)
			fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, err);
		return r ? -1 : 0;
	}
	if (c && !strcmp(c, "wisp-vmm")) {
		/* A daemon VM: a unikernel with one vCPU and no devices. */
		rec->mem = f->hdr.mem_size;
		rec->image = strdup(cfg->restore);
		return rec->image ? 0 : -1;
	}
	if (c && !strcmp(c, "wisp-run")) { /* files before the configuration record */
		char *argv[128];
		int argc = 0;
		argv[argc++] = "run";
		for (c += strlen(c) + 1; c < end && argc < 127; c += strlen(c) + 1)
			argv[argc++] = (char *)c;
		argv[argc] = NULL;
		struct run_config saved;
		r = run_parse_args(argc, argv, &saved, err, sizeof(err));
		if (!r && (saved.restore || saved.config_file))
			snprintf(err, sizeof(err), "%s", "they ask for a restore"), r = -1;
		if (r) {
			fprintf(stderr, "wisp: snapshot '%s': its VM's options do not parse: %s\n",
				cfg->restore, r > 0 ? "--help" : err);
			vm_config_free(&saved.vm);
			return -1;
		}
		*rec = saved.vm;
		return 0;
	}
	fprintf(stderr, "wisp: snapshot '%s': it does not say how its VM was built (%s)\n",
		cfg->restore, c ? c : "no configuration record");
	return -1;
}

int run_restore(struct run_config *cfg)
{
	char err[WISP_ERRLEN * 4];
	struct snap_file f;
	struct vm_config rec;
	vm_config_init(&rec);
	if (snap_open(cfg->restore, &f, err, sizeof(err))) {
		fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, err);
		snap_close(&f);
		return WISP_EXIT_ERROR;
	}
	int code = WISP_EXIT_ERROR;
	if (recorded_config(cfg, &f, &rec))
		goto out;
	if (rec.mem != f.hdr.mem_size || rec.cpus != f.img.nr_vcpus) {
		fprintf(stderr,
			"wisp: snapshot '%s': its configuration and its state disagree on the "
			"VM's size\n",
			cfg->restore);
		goto out;
	}
	/* The host side of each device, as given now, checked against it. */
	int r = vm_config_record_sizes(&cfg->vm);
	if (r) {
		fprintf(stderr, "wisp: --disk: %s\n", strerror(-r));
		goto out;
	}
	if (vm_config_take_host_sides(&rec, &cfg->vm, err, sizeof(err))) {
		for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
			fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, line);
		goto out;
	}
	vm_config_take_identity(&rec, &cfg->vm, false);
	vm_config_free(&cfg->vm);
	cfg->vm = rec;
	vm_config_init(&rec);
	cfg->snap = &f;
	if (run_config_record(cfg)) {
		fprintf(stderr, "wisp: out of memory\n");
		goto out;
	}
	code = run_built(cfg);
out:
	vm_config_free(&rec);
	snap_close(&f);
	return code;
}
