/* vhostile: a guest that breaks the virtio rules on purpose, one way per
 * run, and checks that the device answers as docs/virtio.md promises: a
 * malformed ring or chain sets DEVICE_NEEDS_RESET, a bad but well-formed
 * blk request gets an error status, and after a reset the device works
 * again. The VMM must neither crash nor touch memory outside the guest (its
 * tests run under ASan). Usage: vhostile CASE (see `cases` below). */
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#include "wrt_virtio.h"

#define QSIZE 8

static struct wrt_virtio dev;
static struct wrt_vq vq;
static uint8_t ring[4096] __attribute__((aligned(4096))); /* room for setup_case too */
static uint8_t data[4096] __attribute__((aligned(4096)));
static struct vring_desc table[512] __attribute__((aligned(16)));
static uint64_t mem_size;

static int open_dev(uint32_t id)
{
	if (wrt_virtio_find(id, 0, &dev) ||
	    wrt_virtio_init(&dev, 1ull << VIRTIO_RING_F_INDIRECT_DESC) ||
	    wrt_vq_init(&dev, &vq, 0, QSIZE, ring))
		return -1;
	wrt_virtio_ready(&dev);
	return 0;
}

static void desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vq.desc[i] = (struct vring_desc){addr, len, flags, next};
}

/* Make chain `head` available and notify, bypassing the driver layer. */
static void publish(uint16_t head)
{
	vq.avail->ring[vq.avail->idx % QSIZE] = head;
	__asm__ volatile("" ::: "memory");
	vq.avail->idx++;
	wrt_vq_kick(&vq);
}

/* Wait (up to 2 s) for the device to set NEEDS_RESET. */
static int needs_reset(void)
{
	uint64_t t0 = rt_monotonic_ns();
	do {
		if (wrt_virtio_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return 1;
		rt_poll(1000000);
	} while (rt_monotonic_ns() - t0 < 2000000000ull);
	return 0;
}

/* The rng answers a good request after a reset: the device recovered. */
static int rng_works(void)
{
	if (open_dev(VIRTIO_ID_RNG))
		return 0;
	struct wrt_buf b = {data, 64, 1};
	uint32_t len = 0;
	if (wrt_vq_add(&vq, &b, 1) < 0)
		return 0;
	wrt_vq_kick(&vq);
	return wrt_vq_wait(&vq, &len, 2000000000ull) >= 0 && len == 64;
}

/* Send a blk request as raw descriptors 0..n-1 and return its status byte
 * (0xff if the device never answered). */
static int blk_status(volatile uint8_t *status)
{
	uint64_t t0 = rt_monotonic_ns();
	while (rt_monotonic_ns() - t0 < 2000000000ull) {
		if (wrt_vq_get(&vq, NULL) >= 0)
			return *status;
		if (wrt_virtio_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return 0x100;
		rt_poll(1000000);
	}
	return 0xff;
}

static int blk_works(void)
{
	static struct wrt_blk b;
	return wrt_blk_open(&b, 0) == 0 && wrt_blk_read(&b, 0, data, 1) == 0;
}

static struct virtio_blk_outhdr hdr;
static volatile uint8_t status;

/* A blk request with the header readable or not, and optionally a status. */
static int blk_case(uint32_t type, uint64_t sector, int header_writable, int with_status)
{
	if (open_dev(VIRTIO_ID_BLOCK))
		return -1;
	hdr = (struct virtio_blk_outhdr){.type = type, .sector = sector};
	status = 0xee;
	desc(0, (uintptr_t)&hdr, sizeof(hdr),
	     VRING_DESC_F_NEXT | (header_writable ? VRING_DESC_F_WRITE : 0), 1);
	desc(1, (uintptr_t)data, 512, VRING_DESC_F_WRITE | (with_status ? VRING_DESC_F_NEXT : 0),
	     2);
	desc(2, (uintptr_t)&status, 1, VRING_DESC_F_WRITE, 0);
	publish(0);
	return blk_status(&status);
}

/* Cases against virtio-rng's queue: each must end in NEEDS_RESET. */
static int rng_case(const char *c)
{
	if (open_dev(VIRTIO_ID_RNG))
		return -1;
	uint64_t ram_end = mem_size < 0xC0000000ull ? mem_size : 0xC0000000ull;
	if (!strcmp(c, "loop")) {
		desc(0, (uintptr_t)data, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
		desc(1, (uintptr_t)data, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	} else if (!strcmp(c, "long")) { /* an indirect chain of 512 descriptors */
		for (int i = 0; i < 512; i++)
			table[i] = (struct vring_desc){(uintptr_t)data, 1,
						       VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						       (uint16_t)(i + 1)};
		table[511].flags = VRING_DESC_F_WRITE;
		desc(0, (uintptr_t)table, sizeof(table), VRING_DESC_F_INDIRECT, 0);
	} else if (!strcmp(c, "addr-outside")) { /* in the MMIO hole */
		desc(0, 0xE0000000ull, 64, VRING_DESC_F_WRITE, 0);
	} else if (!strcmp(c, "len-outside")) { /* starts in RAM, ends past it */
		desc(0, ram_end - 16, 4096, VRING_DESC_F_WRITE, 0);
	} else if (!strcmp(c, "addr-wraps")) {
		desc(0, 0xfffffffffffff000ull, 0x2000, VRING_DESC_F_WRITE, 0);
	} else if (!strcmp(c, "bad-next")) {
		desc(0, (uintptr_t)data, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 99);
	} else if (!strcmp(c, "bad-head")) {
		vq.avail->ring[0] = 200;
		__asm__ volatile("" ::: "memory");
		vq.avail->idx = 1;
		wrt_vq_kick(&vq);
		return needs_reset();
	} else if (!strcmp(c, "bad-avail-idx")) { /* claims 100 new chains in 8 slots */
		desc(0, (uintptr_t)data, 16, VRING_DESC_F_WRITE, 0);
		vq.avail->idx = 100;
		wrt_vq_kick(&vq);
		return needs_reset();
	} else if (!strcmp(c, "readable")) { /* rng needs writable buffers */
		desc(0, (uintptr_t)data, 16, 0, 0);
	} else if (!strcmp(c, "nested-indirect")) {
		table[0] = (struct vring_desc){(uintptr_t)table, 32, VRING_DESC_F_INDIRECT, 0};
		desc(0, (uintptr_t)table, 32, VRING_DESC_F_INDIRECT, 0);
	} else if (!strcmp(c, "indirect-outside")) {
		desc(0, 0xE0000000ull, 64, VRING_DESC_F_INDIRECT, 0);
	} else {
		return -1;
	}
	publish(0);
	return needs_reset();
}

/* Queue setup errors: refused at QueueReady with NEEDS_RESET. */
static int setup_case(const char *c)
{
	if (wrt_virtio_find(VIRTIO_ID_RNG, 0, &dev) || wrt_virtio_init(&dev, 0))
		return -1;
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	uint64_t desc_at = (uintptr_t)ring, num = QSIZE;
	if (!strcmp(c, "ring-outside"))
		desc_at = 0xE0000000ull;
	else if (!strcmp(c, "bad-size"))
		num = 3;
	else
		return -1;
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_NUM, (uint32_t)num);
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc_at);
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc_at >> 32));
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(uintptr_t)(ring + 256));
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(uintptr_t)(ring + 512));
	wrt_virtio_write(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
	int refused = !wrt_virtio_read(&dev, VIRTIO_MMIO_QUEUE_READY);
	return refused && (wrt_virtio_status(&dev) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	mem_size = rt_boot_info()->mem_size;
	int ok;
	if (!strcmp(c, "blk-writable-header")) { /* header where data should be read */
		int s = blk_case(VIRTIO_BLK_T_IN, 0, 1, 1);
		rt_printf("vhostile: status %d\n", s);
		ok = s == VIRTIO_BLK_S_IOERR && blk_works();
	} else if (!strcmp(c, "blk-beyond-end")) {
		int s = blk_case(VIRTIO_BLK_T_IN, 1ull << 40, 0, 1);
		rt_printf("vhostile: status %d\n", s);
		ok = s == VIRTIO_BLK_S_IOERR && blk_works();
	} else if (!strcmp(c, "blk-unknown-type")) {
		int s = blk_case(99, 0, 0, 1);
		rt_printf("vhostile: status %d\n", s);
		ok = s == VIRTIO_BLK_S_UNSUPP && blk_works();
	} else if (!strcmp(c, "blk-no-status")) { /* nothing writable to answer in */
		if (open_dev(VIRTIO_ID_BLOCK))
			return 2;
		hdr = (struct virtio_blk_outhdr){.type = VIRTIO_BLK_T_OUT};
		desc(0, (uintptr_t)&hdr, sizeof(hdr), VRING_DESC_F_NEXT, 1);
		desc(1, (uintptr_t)data, 512, 0, 0);
		publish(0);
		ok = needs_reset() && blk_works();
	} else if (!strcmp(c, "ring-outside") || !strcmp(c, "bad-size")) {
		ok = setup_case(c) == 1 && rng_works();
	} else {
		int r = rng_case(c);
		if (r < 0) {
			rt_puts("usage: vhostile "
				"loop|long|addr-outside|len-outside|addr-wraps|bad-next|"
				"bad-head|bad-avail-idx|readable|nested-indirect|indirect-outside|"
				"ring-outside|bad-size|blk-writable-header|blk-beyond-end|"
				"blk-unknown-type|blk-no-status");
			return 2;
		}
		ok = r == 1 && rng_works();
	}
	rt_printf("vhostile: %s: %s\n", c, ok ? "ok" : "FAILED");
	return ok ? 0 : 1;
}
