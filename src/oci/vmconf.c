/* vm.json: the container as one Wisp VM configuration (docs/config.md),
 * which the VMM process reads with `wisp run --config`. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

#define MEM_MIN (2ull << 20)
/* Our part of a Linux command line: the VMM appends its virtio-mmio
 * devices (~42 bytes each, 9 at most here) within the kernel's 2048. */
#define CMDLINE_MAX 1600
#define MEM_MAX	    (64ull << 30)

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

/* Append " wisp.mount=N:FLAGS:DEST" for mount i, the form tinit reads:
 * FLAGS of r (ro), s (nosuid), d (nodev), x (noexec), or "-"; DEST with
 * every byte but [A-Za-z0-9/._+-] as %XX. The disk's serial (its id) is
 * wisp-mount-N. Returns the new length. */
static size_t mount_arg(char *buf, size_t len, size_t o, int i, const struct oci_mount *m)
{
	char flags[8];
	size_t f = 0;
	if (m->ro)
		flags[f++] = 'r';
	if (m->nosuid)
		flags[f++] = 's';
	if (m->nodev)
		flags[f++] = 'd';
	if (m->noexec)
		flags[f++] = 'x';
	if (!f)
		flags[f++] = '-';
	flags[f] = 0;
	o += (size_t)snprintf(buf + o, o < len ? len - o : 0, " wisp.mount=%d:%s:", i, flags);
	for (const unsigned char *p = (const unsigned char *)m->dest; *p && o + 4 < len; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/._+-", *p))
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "%%%02X", *p);
	}
	if (o < len)
		buf[o] = 0;
	return o;
}

/* vm.json for a Linux image. */
int oci_vmconf_linux(int dirfd, const char *dir, const struct oci_spec *spec, const char *kernel,
		     const char *initrd, const char *cmdline_extra, const char *tap,
		     const char *mac, char *err, size_t errlen)
{
	char cmdline[4096];
	size_t len = (size_t)snprintf(
		cmdline, sizeof(cmdline), "console=ttyS0 reboot=t panic=-1 quiet%s%s",
		cmdline_extra && *cmdline_extra ? " " : "", cmdline_extra ? cmdline_extra : "");
	json_t *devices = json_array();
	if (tap && *tap)
		json_array_append_new(devices, json_pack("{s:s, s:s, s:s}", "type", "virtio-net",
							 "tap", tap, "mac", mac));
	for (int i = 0; i < spec->nmounts; i++) {
		char name[32], path[4096], id[24];
		oci_disk_name(i, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		snprintf(id, sizeof(id), "wisp-mount-%d", i);
		json_array_append_new(devices, json_pack("{s:s, s:s, s:s, s:b}", "type",
							 "virtio-blk", "path", path, "id", id,
							 "read_only", spec->mounts[i].ro));
		len = mount_arg(cmdline, sizeof(cmdline), len, i, &spec->mounts[i]);
	}
	if (len >= CMDLINE_MAX) {
		json_decref(devices);
		snprintf(err, errlen,
			 "mounts: their destinations make the kernel command line %zu bytes; at "
			 "most %d fit",
			 len, CMDLINE_MAX);
		return -E2BIG;
	}
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:i, s:o}", "version", 1, "kind",
			      "linux", "kernel", kernel, "initrd", initrd, "cmdline", cmdline,
			      "mem", (json_int_t)vm_mem(spec->mem, 256ull << 20), "cpus",
			      spec->cpus > 0 ? spec->cpus : 1, "devices", devices);
	return write_conf(dirfd, o, err, errlen);
}
