/* A driver's-eye harness for virtio devices without KVM, shared by the unit
 * tests and the fuzzers: guest RAM is a malloc'd buffer (so that ASan sees
 * any access outside it), registers are reached through the MMIO handler,
 * and queue work runs on the calling thread through an ioloop without a
 * thread. Header-only: each test includes it once. */
#ifndef WISP_VIRTIO_HARNESS_H
#define WISP_VIRTIO_HARNESS_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "vmm/ioloop.h"
#include "vmm/vmm.h"

/* Guest-physical layout used by the harness: rings of queue q at
 * VH_RING(q), free memory for buffers from VH_DATA. */
#define VH_RAM	   (1u << 20)
#define VH_RING(q) (0x1000u + (uint64_t)(q)*0x4000u)
#define VH_DATA	   0x20000u

struct vh {
	struct guest_mem mem;
	uint8_t *ram;
	struct ioloop loop;
	struct virtio_dev *d;
	uint16_t num;
	uint16_t avail_idx[VIRTIO_MAX_QUEUES];
	uint16_t used_seen[VIRTIO_MAX_QUEUES];
};

static inline int vh_init(struct vh *h, size_t ram)
{
	memset(h, 0, sizeof(*h));
	h->ram = calloc(1, ram);
	if (!h->ram)
		return -1;
	h->mem.memfd = -1;
	h->mem.size = ram;
	h->mem.base = h->ram;
	h->mem.nr_regions = 1;
	h->mem.regions[0] = (struct mem_region){.gpa = 0, .size = ram, .host = h->ram};
	return ioloop_init(&h->loop, "test");
}

/* Give the device its memory and loop, as virtio_attach would (no KVM). */
static inline int vh_bind(struct vh *h, struct virtio_dev *d)
{
	h->d = d;
	d->mem = &h->mem;
	d->loop = &h->loop;
	d->slot = 0;
	return d->ops->start ? d->ops->start(d) : 0;
}

static inline void vh_destroy(struct vh *h)
{
	if (h->d)
		virtio_dev_free(h->d);
	ioloop_destroy(&h->loop);
	free(h->ram);
	h->d = NULL;
}

static inline void vh_write(struct vh *h, uint64_t off, uint32_t v)
{
	virtio_mmio_access(h->d, NULL, off, (uint8_t *)&v, 4, true);
}

static inline uint32_t vh_read(struct vh *h, uint64_t off)
{
	uint32_t v = 0;
	virtio_mmio_access(h->d, NULL, off, (uint8_t *)&v, 4, false);
	return v;
}

static inline void *vh_ptr(struct vh *h, uint64_t gpa)
{
	return h->ram + gpa;
}

/* The driver's side of initialisation: features, nq queues of num entries
 * at VH_RING(q), DRIVER_OK. Returns the status register afterwards. */
static inline uint32_t vh_setup(struct vh *h, uint64_t features, int nq, uint16_t num)
{
	h->num = num;
	vh_write(h, VIRTIO_MMIO_STATUS, 0);
	vh_write(h, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	features |= 1ull << VIRTIO_F_VERSION_1;
	vh_write(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vh_write(h, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vh_write(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vh_write(h, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vh_write(h, VIRTIO_MMIO_STATUS,
		 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			 VIRTIO_CONFIG_S_FEATURES_OK);
	for (int q = 0; q < nq; q++) {
		uint64_t base = VH_RING(q);
		memset(vh_ptr(h, base), 0, 0x4000);
		vh_write(h, VIRTIO_MMIO_QUEUE_SEL, (uint32_t)q);
		vh_write(h, VIRTIO_MMIO_QUEUE_NUM, num);
		vh_write(h, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
		vh_write(h, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(base + 16u * num));
		vh_write(h, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(base + 0x2000));
		vh_write(h, VIRTIO_MMIO_QUEUE_READY, 1);
		h->avail_idx[q] = h->used_seen[q] = 0;
	}
	vh_write(h, VIRTIO_MMIO_STATUS,
		 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	return vh_read(h, VIRTIO_MMIO_STATUS);
}

static inline struct vring_desc *vh_desc(struct vh *h, int q)
{
	return vh_ptr(h, VH_RING(q));
}

static inline struct vring_avail *vh_avail(struct vh *h, int q)
{
	return vh_ptr(h, VH_RING(q) + 16u * h->num);
}

static inline struct vring_used *vh_used(struct vh *h, int q)
{
	return vh_ptr(h, VH_RING(q) + 0x2000);
}

/* Make chain `head` of queue q available (no notify). */
static inline void vh_publish(struct vh *h, int q, uint16_t head)
{
	struct vring_avail *a = vh_avail(h, q);
	a->ring[h->avail_idx[q] % h->num] = head;
	a->idx = ++h->avail_idx[q];
}

/* Chain of n descriptors starting at first, each one buffer of bufs. */
struct vh_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};
static inline void vh_chain(struct vh *h, int q, uint16_t first, const struct vh_buf *b, int n)
{
	struct vring_desc *d = vh_desc(h, q);
	for (int i = 0; i < n; i++)
		d[first + i] = (struct vring_desc){
			.addr = b[i].gpa,
			.len = b[i].len,
			.flags = (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
			.next = (uint16_t)(first + i + 1),
		};
	vh_publish(h, q, first);
}

/* Next used element of queue q: 1 and *e filled, or 0 if none. */
static inline int vh_take_used(struct vh *h, int q, struct vring_used_elem *e)
{
	struct vring_used *u = vh_used(h, q);
	if (u->idx == h->used_seen[q])
		return 0;
	*e = u->ring[h->used_seen[q]++ % h->num];
	return 1;
}

/* Run the loop's pending handlers (backend fds), up to ms of waiting. */
static inline void vh_pump(struct vh *h, int ms)
{
	while (ioloop_run_once(&h->loop, ms) > 0)
		ms = 0;
}

#endif
