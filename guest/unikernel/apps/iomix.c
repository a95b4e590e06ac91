/* iomix: two virtio devices busy at once, to compare one I/O thread per VM
 * with one per device (WISP_IO_THREADS=device). Each round posts a request
 * to virtio-rng and a read to virtio-blk, notifies both, and waits for both.
 * Usage: iomix [ROUNDS [BYTES]] (defaults 200, 256 KiB per request); start
 * with --rng --disk IMAGE (at least BYTES long). */
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "wrt_virtio.h"

static struct wrt_virtio rng_dev;
static struct wrt_vq rng_vq;
static uint8_t rng_ring[WRT_VQ_MEM(8)] __attribute__((aligned(4096)));
static uint8_t rbuf[1 << 20], dbuf[1 << 20];
static struct wrt_blk blk;

int main(int argc, char **argv)
{
	long long rounds = argc > 1 ? rt_atoll(argv[1]) : 200;
	long long bytes = argc > 2 ? rt_atoll(argv[2]) : 256 << 10;
	if (rounds <= 0 || bytes < 512 || bytes > (long long)sizeof(rbuf) || bytes % 512) {
		rt_puts("usage: iomix [ROUNDS [BYTES]] (BYTES a multiple of 512, at most 1 MiB)");
		return 2;
	}
	if (wrt_virtio_find(VIRTIO_ID_RNG, 0, &rng_dev) || wrt_virtio_init(&rng_dev, 0) ||
	    wrt_vq_init(&rng_dev, &rng_vq, 0, 8, rng_ring) || wrt_blk_open(&blk, 0) ||
	    blk.sectors * 512 < (uint64_t)bytes) {
		rt_puts("iomix: needs --rng and --disk IMAGE of at least BYTES");
		return 1;
	}
	wrt_virtio_ready(&rng_dev);
	uint64_t t0 = rt_monotonic_ns();
	for (long long i = 0; i < rounds; i++) {
		struct wrt_buf r = {rbuf, (uint32_t)bytes, 1};
		struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 0};
		volatile uint8_t status = 0xff;
		struct wrt_buf b[3] = {
			{&h, sizeof(h), 0}, {dbuf, (uint32_t)bytes, 1}, {(void *)&status, 1, 1}};
		wrt_vq_add(&rng_vq, &r, 1);
		wrt_vq_add(&blk.vq, b, 3);
		wrt_vq_kick(&rng_vq);
		wrt_vq_kick(&blk.vq);
		if (wrt_vq_wait(&rng_vq, NULL, 5000000000ull) < 0 ||
		    wrt_vq_wait(&blk.vq, NULL, 5000000000ull) < 0 || status) {
			rt_puts("iomix: a device stopped answering");
			return 1;
		}
	}
	uint64_t ns = rt_monotonic_ns() - t0;
	uint64_t total = (uint64_t)rounds * (uint64_t)bytes * 2;
	rt_printf("iomix: %lld rounds of %lld + %lld bytes in %lu us: %lu bytes/s together\n",
		  rounds, bytes, bytes, (unsigned long)(ns / 1000),
		  (unsigned long)(total * 1000000000ull / ns));
	return 0;
}
