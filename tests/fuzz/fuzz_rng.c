/* Fuzz target: virtio-rng through its transport (see fuzz_device.h). */
#define FUZZ_QUEUES 1
#include "fuzz_device.h"

static struct virtio_dev *fuzz_make(void)
{
	char err[256];
	return virtio_rng_create(err, sizeof(err));
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
