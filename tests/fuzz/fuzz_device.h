/* The guest, played by libFuzzer: each input is a small program of driver
 * actions against one virtio device (set up fresh for every input) in 1 MiB
 * of malloc'd guest RAM, so that ASan flags any access outside it.
 *
 * Input: u8 features, u8 log2(queue size), then commands until the end:
 *   'c' q n {u16 off, u16 len, u8 flags}*n u16 plen payload
 *        a chain on queue q: buffer i at VH_DATA+off; flags bit 0 device-
 *        writable, bit 1 no NEXT link (ends early), bit 2 INDIRECT, bit 3
 *        raw address (u64 follows); the payload is copied at the first
 *        buffer's address. The chain is made available, not notified.
 *   'k' q          notify queue q (the device serves it)
 *   'p' u16 off u8 n bytes   poke guest RAM at VH_RING(0)+off (rings too)
 *   'w' u16 off u32 v        register write;  'r' u16 off  register read
 *   'h' n bytes    a host-side action, device-specific (fuzz_host)
 *   'l'            run the I/O loop once (backend fds)
 *   'R'            reset and set the device up again
 *   'S' u16 off u8 n bytes u16 cut   snapshot: save the device's state,
 *        XOR the n bytes into it at off (wrapping), cut it to `cut` bytes
 *        (if shorter) and restore it into the live device, which must
 *        refuse what is malformed and stay safe to use
 * A device file defines fuzz_make, fuzz_host, fuzz_cleanup and FUZZ_QUEUES. */
#ifndef WISP_FUZZ_DEVICE_H
#define WISP_FUZZ_DEVICE_H

#include <stdint.h>
#include <string.h>

#include "../virtio_harness.h"
#include "util/util.h"

static struct virtio_dev *fuzz_make(void);
static void fuzz_host(struct vh *h, const uint8_t *p, size_t n);
static void fuzz_cleanup(void);

struct reader {
	const uint8_t *p;
	size_t n;
};

static int get(struct reader *r, void *out, size_t len)
{
	if (r->n < len)
		return -1;
	memcpy(out, r->p, len);
	r->p += len;
	r->n -= len;
	return 0;
}

static struct vh fh;

static void chain(struct reader *r)
{
	uint8_t q, n;
	if (get(r, &q, 1) || get(r, &n, 1))
		return;
	q %= FUZZ_QUEUES;
	n = (uint8_t)(n % 16 + 1);
	uint16_t head = 0xffff, prev = 0xffff;
	uint64_t first = VH_DATA;
	struct vring_desc *d = vh_desc(&fh, q);
	/* Descriptors are taken round-robin so that chains of different
	 * requests do not overwrite each other too soon. */
	static uint16_t next_free;
	for (int i = 0; i < n; i++) {
		uint16_t off, len;
		uint8_t fl;
		uint64_t addr;
		if (get(r, &off, 2) || get(r, &len, 2) || get(r, &fl, 1))
			return;
		addr = VH_DATA + off;
		if (fl & 8 && get(r, &addr, 8))
			return;
		uint16_t idx = next_free++ % fh.num;
		d[idx] = (struct vring_desc){
			.addr = addr,
			.len = len,
			.flags = (uint16_t)((fl & 1 ? VRING_DESC_F_WRITE : 0) |
					    (fl & 4 ? VRING_DESC_F_INDIRECT : 0)),
		};
		if (prev != 0xffff) {
			d[prev].flags |= VRING_DESC_F_NEXT;
			d[prev].next = idx;
		} else {
			head = idx;
			first = addr;
		}
		prev = idx;
		if (fl & 2)
			break;
	}
	uint16_t plen;
	if (!get(r, &plen, 2)) {
		plen = (uint16_t)(plen < r->n ? plen : r->n);
		void *p = gmem_ptr(&fh.mem, first, plen);
		if (p)
			memcpy(p, r->p, plen);
		r->p += plen;
		r->n -= plen;
	}
	if (head != 0xffff)
		vh_publish(&fh, q, head);
}

/* 'S': a save, mutated by the input, restored over the running device. */
static void snapshot(struct virtio_dev *d, struct reader *r)
{
	uint16_t off, cut;
	uint8_t n;
	if (get(r, &off, 2) || get(r, &n, 1) || r->n < n)
		return;
	const uint8_t *x = r->p;
	r->p += n;
	r->n -= n;
	if (get(r, &cut, 2))
		return;
	struct wbuf b = {0};
	uint32_t version = 0;
	if (!virtio_dev_save(d, &b, &version) && !wbuf_error(&b) && b.len) {
		for (int i = 0; i < n; i++)
			b.p[(off + i) % b.len] ^= x[i];
		char err[256];
		(void)virtio_dev_restore(d, b.p, cut < b.len ? cut : b.len, version, err,
					 sizeof(err));
	}
	wbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = {data, size};
	uint8_t feat, lognum;
	if (get(&r, &feat, 1) || get(&r, &lognum, 1))
		return 0;
	if (vh_init(&fh, VH_RAM))
		return 0;
	struct virtio_dev *d = fuzz_make();
	if (!d || vh_bind(&fh, d)) {
		if (d)
			fh.d = d;
		vh_destroy(&fh);
		fuzz_cleanup();
		return 0;
	}
	/* Ring features, and the device's own low feature bits. */
	uint64_t want = (feat & 1 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
			(feat & 2 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0) |
			((uint64_t)(feat >> 2) & d->device_features);
	uint16_t num = (uint16_t)(1u << (lognum % 9)); /* 1 .. 256 */
	vh_setup(&fh, want, FUZZ_QUEUES, num);
	uint8_t cmd;
	while (!get(&r, &cmd, 1)) {
		uint8_t q, n;
		uint16_t off;
		uint32_t v;
		switch (cmd) {
		case 'c':
			chain(&r);
			break;
		case 'k':
			if (!get(&r, &q, 1))
				virtio_kick(d, q % FUZZ_QUEUES);
			break;
		case 'p':
			if (get(&r, &off, 2) || get(&r, &n, 1) || r.n < n)
				break;
			memcpy(vh_ptr(&fh, VH_RING(0) + off), r.p, n);
			r.p += n;
			r.n -= n;
			break;
		case 'w':
			if (!get(&r, &off, 2) && !get(&r, &v, 4))
				vh_write(&fh, off % VIRTIO_MMIO_SLOT_SIZE, v);
			break;
		case 'r':
			if (!get(&r, &off, 2))
				(void)vh_read(&fh, off % VIRTIO_MMIO_SLOT_SIZE);
			break;
		case 'h':
			if (get(&r, &n, 1) || r.n < n)
				break;
			fuzz_host(&fh, r.p, n);
			r.p += n;
			r.n -= n;
			break;
		case 'l':
			ioloop_run_once(&fh.loop, 0);
			break;
		case 'R':
			vh_setup(&fh, want, FUZZ_QUEUES, num);
			break;
		case 'S':
			snapshot(d, &r);
			break;
		default:
			break;
		}
	}
	vh_pump(&fh, 0);
	vh_destroy(&fh);
	fuzz_cleanup();
	return 0;
}

#endif
