/* Fuzz target: virtio-blk's request parser on a 64 KiB disk held in a
 * memfd, served synchronously so that every run is repeatable (the io_uring
 * path shares the parser; the unit tests cover its completions). Host
 * action: none (the disk is the backend). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_QUEUES 1
#include "fuzz_device.h"

static int disk = -1;

static struct virtio_dev *fuzz_make(void)
{
	char err[256], path[64];
	if (disk < 0) {
		disk = memfd_create("fuzz-disk", MFD_CLOEXEC);
		if (disk < 0 || ftruncate(disk, 64 << 10))
			return NULL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", disk);
	struct virtio_blk_opts o = {.path = path, .no_uring = true, .id = "fuzz"};
	return virtio_blk_create(&o, err, sizeof(err));
}

static void fuzz_host(struct vh *h, const uint8_t *p, size_t n)
{
	(void)h;
	(void)p;
	(void)n;
}

static void fuzz_cleanup(void)
{
}
