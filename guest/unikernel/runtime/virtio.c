/* The virtio-mmio device and split-virtqueue layer of the unikernel runtime
 * (see wrt_virtio.h). x86 keeps stores in order and loads in order, so the
 * only fence needed is the one between publishing avail->idx and reading the
 * device's "do not notify me" flag (a store followed by a load). */
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include "wrt_virtio.h"

#define barrier() __asm__ volatile("" ::: "memory")
#define mfence()  __asm__ volatile("mfence" ::: "memory")

uint32_t wrt_virtio_read(struct wrt_virtio *d, uint32_t off)
{
	return *(volatile uint32_t *)(d->regs + off);
}

void wrt_virtio_write(struct wrt_virtio *d, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(d->regs + off) = v;
}

int wrt_virtio_find(uint32_t device_id, int nth, struct wrt_virtio *d)
{
	const struct wisp_boot_info *bi = rt_boot_info();
	if (!bi || !bi->devices)
		return -1;
	const struct wisp_device *t = (const struct wisp_device *)(uintptr_t)bi->devices;
	for (uint32_t i = 0; i < bi->nr_devices && i < WISP_MAX_DEVICES; i++) {
		if (t[i].type != WISP_DEV_VIRTIO_MMIO || t[i].virtio_id != device_id || nth--)
			continue;
		d->regs = (volatile uint8_t *)(uintptr_t)t[i].base;
		d->device_id = device_id;
		d->event = 1ull << t[i].event;
		d->features = 0;
		/* Trust the table, but check the device is what it says. */
		if (wrt_virtio_read(d, VIRTIO_MMIO_MAGIC_VALUE) != 0x74726976 ||
		    wrt_virtio_read(d, VIRTIO_MMIO_VERSION) != 2 ||
		    wrt_virtio_read(d, VIRTIO_MMIO_DEVICE_ID) != device_id)
			return -1;
		return 0;
	}
	return -1;
}

int wrt_virtio_init(struct wrt_virtio *d, uint64_t want)
{
	wrt_virtio_write(d, VIRTIO_MMIO_STATUS, 0);
	uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	wrt_virtio_write(d, VIRTIO_MMIO_STATUS, s);
	s |= VIRTIO_CONFIG_S_DRIVER;
	wrt_virtio_write(d, VIRTIO_MMIO_STATUS, s);
	uint64_t offered = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		wrt_virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		offered |= (uint64_t)wrt_virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
	}
	d->features = offered & (want | 1ull << VIRTIO_F_VERSION_1);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wrt_virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		wrt_virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES,
				 (uint32_t)(d->features >> (32 * sel)));
	}
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	wrt_virtio_write(d, VIRTIO_MMIO_STATUS, s);
	if (!(wrt_virtio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -1;
	return 0;
}

int wrt_vq_init(struct wrt_virtio *d, struct wrt_vq *q, uint16_t qi, uint16_t num, void *mem)
{
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, qi);
	if (wrt_virtio_read(d, VIRTIO_MMIO_QUEUE_READY) ||
	    wrt_virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < num)
		return -1;
	uint8_t *m = mem;
	memset(m, 0, WRT_VQ_MEM(num));
	q->dev = d;
	q->index = qi;
	q->num = num;
	q->desc = (struct vring_desc *)m;
	q->avail = (struct vring_avail *)(m + 16 * num);
	q->used = (struct vring_used *)(m + 16 * num + ((6 + 2 * num + 3) & ~3));
	for (uint16_t i = 0; i < num; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->free_head = 0;
	q->nr_free = num;
	q->last_used = 0;
	uint64_t da = (uintptr_t)q->desc, aa = (uintptr_t)q->avail, ua = (uintptr_t)q->used;
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)da);
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(da >> 32));
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)aa);
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(aa >> 32));
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)ua);
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(ua >> 32));
	wrt_virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return wrt_virtio_read(d, VIRTIO_MMIO_QUEUE_READY) ? 0 : -1;
}

void wrt_virtio_ready(struct wrt_virtio *d)
{
	uint32_t s = wrt_virtio_read(d, VIRTIO_MMIO_STATUS);
	wrt_virtio_write(d, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
}

uint32_t wrt_virtio_status(struct wrt_virtio *d)
{
	return wrt_virtio_read(d, VIRTIO_MMIO_STATUS);
}

void wrt_virtio_config(struct wrt_virtio *d, uint32_t off, void *buf, uint32_t len)
{
	uint8_t *b = buf;
	for (uint32_t i = 0; i < len; i++)
		b[i] = d->regs[VIRTIO_MMIO_CONFIG + off + i];
}

int wrt_vq_add(struct wrt_vq *q, const struct wrt_buf *b, int n)
{
	if (n <= 0 || n > q->nr_free)
		return -1;
	uint16_t head = q->free_head, i = head, last = head;
	for (int k = 0; k < n; k++) {
		struct vring_desc *d = &q->desc[i];
		d->addr = (uint64_t)(uintptr_t)b[k].addr;
		d->len = b[k].len;
		d->flags = (uint16_t)((b[k].writable ? VRING_DESC_F_WRITE : 0) |
				      (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		last = i;
		i = d->next;
	}
	q->free_head = q->desc[last].next;
	q->nr_free = (uint16_t)(q->nr_free - n);
	q->avail->ring[q->avail->idx % q->num] = head;
	barrier(); /* the entry before the index that publishes it */
	q->avail->idx++;
	return head;
}

void wrt_vq_kick(struct wrt_vq *q)
{
	mfence(); /* our avail->idx store before the device's flag load */
	if (!(q->used->flags & VRING_USED_F_NO_NOTIFY))
		wrt_virtio_write(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

int wrt_vq_get(struct wrt_vq *q, uint32_t *len)
{
	if (*(volatile uint16_t *)&q->used->idx == q->last_used)
		return -1;
	barrier(); /* the index before the entry it covers */
	struct vring_used_elem e = q->used->ring[q->last_used % q->num];
	q->last_used++;
	if (e.id >= q->num)
		return -1; /* a broken device; nothing sane to free */
	/* Put the chain back on the free list. */
	uint16_t i = (uint16_t)e.id, n = 1;
	while (q->desc[i].flags & VRING_DESC_F_NEXT && n < q->num) {
		i = q->desc[i].next;
		n++;
	}
	q->desc[i].next = q->free_head;
	q->free_head = (uint16_t)e.id;
	q->nr_free = (uint16_t)(q->nr_free + n);
	if (len)
		*len = e.len;
	return (int)e.id;
}

uint64_t wrt_virtio_wait_exits;

int wrt_vq_wait(struct wrt_vq *q, uint32_t *len, uint64_t timeout_ns)
{
	/* Spin a little first: a completion often takes only microseconds, and
	 * a POLL costs a full exit to the VMM. */
	for (int spin = 0; spin < 2000; spin++) {
		int h = wrt_vq_get(q, len);
		if (h >= 0)
			return h;
		__asm__ volatile("pause");
	}
	uint64_t start = rt_monotonic_ns();
	wrt_virtio_wait_exits++;
	for (;;) {
		int h = wrt_vq_get(q, len);
		if (h >= 0)
			return h;
		uint64_t now = rt_monotonic_ns(), spent = now - start;
		wrt_virtio_wait_exits += 2; /* this clock read and the POLL below */
		if (timeout_ns != UINT64_MAX && spent >= timeout_ns)
			return -1;
		/* An event raised after the check above is latched: POLL returns. */
		rt_poll(timeout_ns == UINT64_MAX ? UINT64_MAX : timeout_ns - spent);
	}
}
