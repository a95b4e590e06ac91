/* throttle: reads a rate-limited disk while another device keeps working.
 * Usage: throttle BYTES [CHUNK] (CHUNK a multiple of 512, default 64 KiB,
 * at most 256 KiB); start with --disk IMAGE[,bw=...][,ops=...] and, to
 * check that the rest of the VM is still served meanwhile, --rng.
 *
 * One disk read is always in flight (the disk is read from the start and
 * wraps around); while it waits, the app keeps asking virtio-rng for 64
 * bytes at a time. It prints the disk's rate and what the RNG got:
 *   throttle: BYTES bytes in NS ns: RATE bytes/s, REQS requests
 *   throttle: rng REQS requests meanwhile, longest wait NS ns */
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "wrt_virtio.h"

#define CHUNK_MAX (256u << 10)

static struct wrt_blk blk;
static struct wrt_virtio rng_dev;
static struct wrt_vq rng_vq;
static uint8_t rng_ring[WRT_VQ_MEM(8)] __attribute__((aligned(4096)));
static uint8_t dbuf[CHUNK_MAX], rbuf[64];

int main(int argc, char **argv)
{
	long long total = argc > 1 ? rt_atoll(argv[1]) : 0;
	long long chunk = argc > 2 ? rt_atoll(argv[2]) : 64 << 10;
	if (total <= 0 || chunk < 512 || chunk > CHUNK_MAX || chunk % 512) {
		rt_puts("usage: throttle BYTES [CHUNK] (CHUNK a multiple of 512, at most 256 KiB)");
		return 2;
	}
	if (wrt_blk_open(&blk, 0) || blk.sectors * 512 < (uint64_t)chunk) {
		rt_puts("throttle: needs --disk IMAGE of at least CHUNK bytes");
		return 1;
	}
	int rng = !wrt_virtio_find(VIRTIO_ID_RNG, 0, &rng_dev);
	if (rng) {
		if (wrt_virtio_init(&rng_dev, 0) ||
		    wrt_vq_init(&rng_dev, &rng_vq, 0, 8, rng_ring)) {
			rt_puts("throttle: virtio-rng set-up failed");
			return 1;
		}
		wrt_virtio_ready(&rng_dev);
	}
	uint64_t sectors = (uint64_t)chunk / 512, sector = 0, done = 0, reqs = 0;
	uint64_t rng_reqs = 0, rng_worst = 0;
	struct virtio_blk_outhdr h;
	volatile uint8_t status;
	uint64_t t0 = rt_monotonic_ns();
	while (done < (uint64_t)total) {
		if (sector + sectors > blk.sectors)
			sector = 0;
		h = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_IN, .sector = sector};
		status = 0xff;
		struct wrt_buf b[3] = {
			{&h, sizeof(h), 0}, {dbuf, (uint32_t)chunk, 1}, {(void *)&status, 1, 1}};
		wrt_vq_add(&blk.vq, b, 3);
		wrt_vq_kick(&blk.vq);
		/* Until the read completes: the RNG, one request at a time. */
		while (wrt_vq_get(&blk.vq, NULL) < 0) {
			if (!rng) {
				if (wrt_vq_wait(&blk.vq, NULL, 30000000000ull) < 0) {
					rt_puts("throttle: the disk stopped answering");
					return 1;
				}
				break;
			}
			struct wrt_buf r = {rbuf, sizeof(rbuf), 1};
			uint64_t s = rt_monotonic_ns();
			wrt_vq_add(&rng_vq, &r, 1);
			wrt_vq_kick(&rng_vq);
			if (wrt_vq_wait(&rng_vq, NULL, 30000000000ull) < 0) {
				rt_puts("throttle: virtio-rng stopped answering");
				return 1;
			}
			uint64_t w = rt_monotonic_ns() - s;
			rng_worst = w > rng_worst ? w : rng_worst;
			rng_reqs++;
		}
		if (status) {
			rt_printf("throttle: read at sector %lu failed (status %u)\n",
				  (unsigned long)sector, status);
			return 1;
		}
		done += (uint64_t)chunk;
		sector += sectors;
		reqs++;
	}
	uint64_t ns = rt_monotonic_ns() - t0;
	rt_printf("throttle: %lu bytes in %lu ns: %lu bytes/s, %lu requests\n", (unsigned long)done,
		  (unsigned long)ns, (unsigned long)(done * 1000000000ull / (ns ? ns : 1)),
		  (unsigned long)reqs);
	if (rng)
		rt_printf("throttle: rng %lu requests meanwhile, longest wait %lu ns\n",
			  (unsigned long)rng_reqs, (unsigned long)rng_worst);
	return 0;
}
