/* Polling virtio-mmio drivers for Wisp unikernels: a generic device and
 * split-virtqueue layer, and rng, blk and net drivers on top of it.
 *
 * Devices are found in the boot-info device table. There are no interrupts:
 * a driver adds buffers, notifies the device (a write that KVM turns into an
 * ioeventfd signal, about 3 us, no exit to the VMM), then watches the used
 * ring in memory; when it has nothing else to do it sleeps in the POLL
 * hypercall, which the device's next completion wakes. Memory is identity
 * mapped, so a pointer is also the guest-physical address the device sees. */
#ifndef WRT_VIRTIO_H
#define WRT_VIRTIO_H

#include <linux/virtio_ring.h>
#include <stddef.h>
#include <stdint.h>

#include "wrt.h"

struct wrt_virtio {
	volatile uint8_t *regs;
	uint32_t device_id;
	uint64_t event;	   /* bit of rt_poll()'s result for this device */
	uint64_t features; /* negotiated */
};

struct wrt_vq {
	struct wrt_virtio *dev;
	uint16_t index, num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t free_head, nr_free, last_used;
};

/* Bytes of ring memory for a queue of num entries (page-aligned buffer). */
#define WRT_VQ_MEM(num) (16 * (num) + ((6 + 2 * (num) + 3) & ~3) + 6 + 8 * (num))

/* One buffer of a chain. */
struct wrt_buf {
	void *addr;
	uint32_t len;
	int writable; /* device writes it */
};

/* Find the nth (from 0) device with this virtio ID; 0 on success. */
int wrt_virtio_find(uint32_t device_id, int nth, struct wrt_virtio *d);
/* Reset and negotiate: VERSION_1 plus those of `want` the device offers.
 * Returns 0, or -1 if the device refused (FEATURES_OK did not stick). */
int wrt_virtio_init(struct wrt_virtio *d, uint64_t want);
/* Set up queue qi with num entries in mem (page aligned, WRT_VQ_MEM bytes). */
int wrt_vq_init(struct wrt_virtio *d, struct wrt_vq *q, uint16_t qi, uint16_t num, void *mem);
/* Tell the device the driver is ready (DRIVER_OK). */
void wrt_virtio_ready(struct wrt_virtio *d);
/* Device status register (e.g. to see VIRTIO_CONFIG_S_NEEDS_RESET). */
uint32_t wrt_virtio_status(struct wrt_virtio *d);
/* Register access, for tests that poke the transport directly. */
uint32_t wrt_virtio_read(struct wrt_virtio *d, uint32_t off);
void wrt_virtio_write(struct wrt_virtio *d, uint32_t off, uint32_t v);
/* Read config-space bytes at off. */
void wrt_virtio_config(struct wrt_virtio *d, uint32_t off, void *buf, uint32_t len);

/* Add a chain (readable buffers first); returns its head, -1 if full. */
int wrt_vq_add(struct wrt_vq *q, const struct wrt_buf *b, int n);
/* Notify the device of new buffers on q. */
void wrt_vq_kick(struct wrt_vq *q);
/* Take the next used chain: its head, and bytes written in *len; -1 if none. */
int wrt_vq_get(struct wrt_vq *q, uint32_t *len);
/* Wait up to timeout_ns for a used chain (spinning briefly, then POLL);
 * same result as wrt_vq_get. */
int wrt_vq_wait(struct wrt_vq *q, uint32_t *len, uint64_t timeout_ns);
/* Hypercalls (each one VM exit) that wrt_vq_wait made so far: benchmarks
 * add them to the device's own exits. */
extern uint64_t wrt_virtio_wait_exits;

/* --- virtio-rng ---------------------------------------------------------------- */
/* Fill buf with len random bytes from the first virtio-rng; -1 if there is
 * none, else bytes read. */
long wrt_rng_read(void *buf, size_t len);

/* --- virtio-blk ---------------------------------------------------------------- */
struct wrt_blk {
	struct wrt_virtio dev;
	struct wrt_vq vq;
	uint64_t sectors; /* capacity in 512-byte sectors */
	int ro;
};
/* Open the nth virtio-blk; 0 on success. */
int wrt_blk_open(struct wrt_blk *b, int nth);
/* Read or write count sectors at sector; returns the status byte
 * (0 ok, 1 I/O error, 2 unsupported), -1 if the device does not answer. */
int wrt_blk_read(struct wrt_blk *b, uint64_t sector, void *buf, uint32_t count);
int wrt_blk_write(struct wrt_blk *b, uint64_t sector, const void *buf, uint32_t count);
int wrt_blk_flush(struct wrt_blk *b);
/* The disk's ID string, NUL-terminated (at most 20 bytes + NUL). */
int wrt_blk_id(struct wrt_blk *b, char id[21]);

/* --- virtio-net ---------------------------------------------------------------- */
#define WRT_NET_MTU_FRAME 1514 /* Ethernet frame without FCS */
struct wrt_net {
	struct wrt_virtio dev;
	struct wrt_vq rx, tx;
	uint8_t mac[6];
};
/* Open the nth virtio-net and post receive buffers; 0 on success. */
int wrt_net_open(struct wrt_net *n, int nth);
/* Receive one frame into buf (at most len bytes) within timeout_ns; returns
 * its length, 0 on timeout. */
long wrt_net_recv(struct wrt_net *n, void *buf, size_t len, uint64_t timeout_ns);
/* Send one frame (at most WRT_NET_MTU_FRAME bytes); 0 or -1. */
int wrt_net_send(struct wrt_net *n, const void *frame, size_t len);

#endif
