/* snaptool: test helper for snapshot files. `snaptool version FILE N`
 * rewrites the header's format version (and its checksum, so that only the
 * version is wrong); `snaptool info FILE` prints what the header and the
 * state say (the interrupt set-up: irqchip, lapic or none); `snaptool state FILE OUT` writes the state section alone (a
 * fuzzing seed); `snaptool sub FILE OLD NEW` replaces the bytes OLD by NEW
 * (same length) wherever they occur in the state section and fixes both
 * hashes: a crafted snapshot that passes every integrity check. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

/* Replace OLD by NEW (same length) in FILE's state section; fix the hashes. */
static int sub(const char *path, const char *old, const char *new)
{
	size_t n = strlen(old);
	if (n == 0 || strlen(new) != n) {
		fprintf(stderr, "snaptool: sub: '%s' and '%s' differ in length\n", old, new);
		return 2;
	}
	int fd = open(path, O_RDWR);
	struct snap_header h;
	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
		return perror(path), 1;
	char *st = malloc(h.state_len);
	if (!st || pread(fd, st, h.state_len, (off_t)h.state_off) != (ssize_t)h.state_len)
		return perror(path), 1;
	int hits = 0;
	for (char *p = st; (p = memmem(p, h.state_len - (size_t)(p - st), old, n)); p += n) {
		memcpy(p, new, n);
		hits++;
	}
	if (!hits) {
		fprintf(stderr, "snaptool: sub: '%s' is not in the state\n", old);
		return 1;
	}
	h.state_hash = snap_hash(st, h.state_len);
	h.header_hash = snap_hash(&h, offsetof(struct snap_header, header_hash));
	if (pwrite(fd, st, h.state_len, (off_t)h.state_off) != (ssize_t)h.state_len ||
	    pwrite(fd, &h, sizeof(h), 0) != sizeof(h))
		return perror(path), 1;
	free(st);
	close(fd);
	printf("%d replaced\n", hits);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: snaptool version FILE N | info FILE | config FILE | state "
				"FILE OUT | sub FILE OLD NEW\n");
		return 2;
	}
	if (!strcmp(argv[1], "version") && argc == 4) {
		int fd = open(argv[2], O_RDWR);
		struct snap_header h;
		if (fd < 0 || pread(fd, &h, sizeof(h), 0) != sizeof(h))
			return perror(argv[2]), 1;
		h.version = (uint32_t)atoi(argv[3]);
		h.header_hash = snap_hash(&h, offsetof(struct snap_header, header_hash));
		if (pwrite(fd, &h, sizeof(h), 0) != sizeof(h))
			return perror(argv[2]), 1;
		return close(fd), 0;
	}
	if (!strcmp(argv[1], "sub") && argc == 5)
		return sub(argv[2], argv[3], argv[4]);
	struct snap_file f;
	char err[WISP_ERRLEN];
	if (snap_open(argv[2], &f, err, sizeof(err))) {
		fprintf(stderr, "snaptool: %s: %s\n", argv[2], err);
		return 1;
	}
	if (!strcmp(argv[1], "state") && argc == 4) {
		FILE *o = fopen(argv[3], "wb");
		if (!o || fwrite(f.state, 1, f.hdr.state_len, o) != f.hdr.state_len)
			return perror(argv[3]), 1;
		fclose(o);
	} else if (!strcmp(argv[1], "config")) {
		/* the CONFIG record: its tag, then (SNAP_CONFIG_TAG) the JSON */
		const char *c = f.img.config ? f.img.config : "";
		size_t n = strlen(c) + 1;
		printf("%s\n", c);
		if (n < f.img.config_len)
			printf("%.*s\n", (int)strnlen(c + n, f.img.config_len - n), c + n);
	} else {
		printf("version %u, state %llu bytes at %llu, memory %llu MiB at %llu, %llu "
		       "extents, %d vCPUs, %d devices, config '%s'\n",
		       f.hdr.version, (unsigned long long)f.hdr.state_len,
		       (unsigned long long)f.hdr.state_off,
		       (unsigned long long)(f.hdr.mem_size >> 20),
		       (unsigned long long)f.hdr.mem_off, (unsigned long long)f.img.nr_extents,
		       f.img.nr_vcpus, f.img.nr_devices, f.img.config ? f.img.config : "");
		printf("interrupts: %s\n", (f.img.vm.flags & SNAP_VM_IRQCHIP)	      ? "irqchip"
					   : (f.img.vm.flags & SNAP_VM_SPLIT_IRQCHIP) ? "lapic"
										      : "none");
		for (int i = 0; i < f.img.nr_devices; i++)
			printf("device %d: %s v%u, %zu bytes\n", i, f.img.devices[i].d.name,
			       f.img.devices[i].d.dev_version, f.img.devices[i].len);
	}
	snap_close(&f);
	return 0;
}
