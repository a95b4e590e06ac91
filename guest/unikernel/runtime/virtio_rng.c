/* Polling virtio-rng driver: one queue, one device-writable buffer per
 * request, which the device fills whole from the host's getrandom(). */
#include <linux/virtio_ids.h>

#include "wrt_virtio.h"

#define RNG_QSIZE 8

static struct wrt_virtio rng_dev;
static struct wrt_vq rng_vq;
static uint8_t rng_ring[WRT_VQ_MEM(RNG_QSIZE)] __attribute__((aligned(4096)));
static int rng_state; /* 0 not probed, 1 ready, -1 absent or broken */

static int rng_open(void)
{
	if (rng_state)
		return rng_state;
	rng_state = -1;
	if (wrt_virtio_find(VIRTIO_ID_RNG, 0, &rng_dev) || wrt_virtio_init(&rng_dev, 0) ||
	    wrt_vq_init(&rng_dev, &rng_vq, 0, RNG_QSIZE, rng_ring))
		return rng_state;
	wrt_virtio_ready(&rng_dev);
	return rng_state = 1;
}

long wrt_rng_read(void *buf, size_t len)
{
	if (rng_open() < 0)
		return -1;
	size_t done = 0;
	while (done < len) {
		/* One chain per call of at most 1 MiB: what the device serves at once. */
		size_t n = len - done > (1u << 20) ? (1u << 20) : len - done;
		struct wrt_buf b = {(uint8_t *)buf + done, (uint32_t)n, 1};
		if (wrt_vq_add(&rng_vq, &b, 1) < 0)
			return -1;
		wrt_vq_kick(&rng_vq);
		uint32_t got;
		if (wrt_vq_wait(&rng_vq, &got, 1000000000ull) < 0 || got == 0 || got > n)
			return done ? (long)done : -1;
		done += got;
	}
	return (long)done;
}
