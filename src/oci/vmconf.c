/* vm.json: the container as one Wisp VM configuration (docs/config.md),
 * which the VMM process reads with `wisp run --config`. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

#define MEM_MIN (2ull << 20)
#define MEM_MAX (64ull << 30)

/* linux.resources.memory.limit as a VM size: a 4 KiB multiple in range. */
static uint64_t vm_mem(uint64_t limit, uint64_t dflt)
{
	if (!limit)
		return dflt;
	limit = (limit + 4095) & ~4095ull;
	return limit < MEM_MIN ? MEM_MIN : limit > MEM_MAX ? MEM_MAX : limit;
}

/* Serialise o into dirfd/vm.json and drop it. */
static int write_conf(int dirfd, json_t *o, char *err, size_t errlen)
{
	char *s = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
	json_decref(o);
	if (!s)
		return -ENOMEM;
	int r = oci_write_atomic(dirfd, "vm.json", s, strlen(s), err, errlen);
	free(s);
	return r;
}

/* vm.json for a unikernel. */
int oci_vmconf_unikernel(int dirfd, const struct oci_spec *spec, int image_fd, char *err,
			 size_t errlen)
{
	char image[64];
	size_t joined = 0;
	json_t *args = json_array();
	snprintf(image, sizeof(image), "/proc/self/fd/%d", image_fd);
	for (int i = 1; i < spec->nargs; i++) {
		joined += strlen(spec->args[i]) + 1;
		json_array_append_new(args, json_string(spec->args[i]));
	}
	if (joined > 3839) {
		json_decref(args);
		snprintf(err, errlen,
			 "process.args: %zu bytes joined; a unikernel takes at most 3839", joined);
		return -E2BIG;
	}
	json_t *o =
		json_pack("{s:i, s:s, s:s, s:o, s:I}", "version", 1, "kind", "unikernel", "image",
			  image, "args", args, "mem", (json_int_t)vm_mem(spec->mem, 32ull << 20));
	return write_conf(dirfd, o, err, errlen);
}

/* vm.json for a Linux image. */
int oci_vmconf_linux(int dirfd, const struct oci_spec *spec, const char *kernel, const char *initrd,
		     const char *cmdline_extra, const char *tap, const char *mac, char *err,
		     size_t errlen)
{
	char cmdline[1024];
	snprintf(cmdline, sizeof(cmdline), "console=ttyS0 reboot=t panic=-1 quiet%s%s",
		 cmdline_extra && *cmdline_extra ? " " : "", cmdline_extra ? cmdline_extra : "");
	json_t *devices = json_array();
	if (tap && *tap)
		json_array_append_new(devices, json_pack("{s:s, s:s, s:s}", "type", "virtio-net",
							 "tap", tap, "mac", mac));
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:i, s:o}", "version", 1, "kind",
			      "linux", "kernel", kernel, "initrd", initrd, "cmdline", cmdline,
			      "mem", (json_int_t)vm_mem(spec->mem, 256ull << 20), "cpus",
			      spec->cpus > 0 ? spec->cpus : 1, "devices", devices);
	return write_conf(dirfd, o, err, errlen);
}
