/* Split virtqueues, device side. The guest owns the rings and may rewrite
 * them at any moment, from another vCPU, while we read them. So:
 *  - every index the guest gives us is checked before it is used, and each
 *    value is read exactly once (descriptors are copied, then checked);
 *  - every buffer goes through gmem_ptr() and must lie inside one RAM region;
 *  - a walk visits at most one table's worth of descriptors, which ends
 *    loops, and at most VIRTQ_MAX_CHAIN in all;
 *  - anything malformed breaks the queue: the device reports NEEDS_RESET
 *    and takes nothing more from it until the driver resets it.
 * Ordering: avail->idx is read with acquire before the entries it covers;
 * used entries are written before used->idx is released. */
#include <errno.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "vmm/vmm.h"

static uint16_t load16(const void *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static void store16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

static int fail(struct virtq *q, const char *why)
{
	q->broken = true;
	q->error = why;
	return -EINVAL;
}

void virtq_reset(struct virtq *q)
{
	uint64_t chains = q->chains, max = q->max_bytes, tx = q->tx_bytes, rx = q->rx_bytes;
	memset(q, 0, sizeof(*q));
	q->chains = chains;
	q->max_bytes = max;
	q->tx_bytes = tx;
	q->rx_bytes = rx;
}

int virtq_setup(struct virtq *q, const struct guest_mem *mem, bool event_idx, bool indirect)
{
	struct virtq_state *s = &q->s;
	q->mem = mem;
	q->event_idx = event_idx;
	q->indirect = indirect;
	q->broken = false;
	q->error = NULL;
	if (!q->max_bytes)
		q->max_bytes = UINT32_MAX;
	if (s->num == 0 || s->num > VIRTQ_MAX_SIZE || (s->num & (s->num - 1)))
		return fail(q, "queue size is not a power of two up to QueueNumMax");
	if (s->desc_gpa % 16 || s->avail_gpa % 2 || s->used_gpa % 4)
		return fail(q, "ring address misaligned");
	/* Sizes include the event words after the avail and used rings. */
	uint64_t n = s->num;
	q->desc = gmem_ptr(mem, s->desc_gpa, 16 * n);
	q->avail = gmem_ptr(mem, s->avail_gpa, 6 + 2 * n);
	q->used = gmem_ptr(mem, s->used_gpa, 6 + 8 * n);
	if (!q->desc || !q->avail || !q->used)
		return fail(q, "ring outside guest RAM");
	return 0;
}

bool virtq_has_avail(struct virtq *q)
{
	if (!q->s.ready || q->broken || !q->avail)
		return false;
	return load16(&q->avail->idx) != q->s.last_avail;
}

/* Walk the chain starting at head into c. */
static int walk(struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	const struct vring_desc *table = q->desc;
	uint32_t size = q->s.num; /* entries in the table being walked */
	uint32_t seen = 0;	  /* descriptors visited in that table */
	uint32_t idx = head;
	bool in_indirect = false;
	c->head = head;
	c->nr_r = c->nr_w = 0;
	c->r_len = c->w_len = 0;
	for (;;) {
		if (idx >= size)
			return fail(q, "descriptor index out of range");
		if (++seen > size)
			return fail(q, "descriptor chain loops");
		struct vring_desc d;
		memcpy(&d, &table[idx], sizeof(d)); /* one read; the guest may change it */
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!q->indirect)
				return fail(q,
					    "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
			if (in_indirect)
				return fail(q, "indirect table inside an indirect table");
			if (d.flags & VRING_DESC_F_NEXT)
				return fail(q, "indirect descriptor with NEXT set");
			if (c->nr_r + c->nr_w)
				return fail(q, "indirect descriptor not at the head of the chain");
			if (d.len == 0 || d.len % sizeof(struct vring_desc) ||
			    d.len / sizeof(struct vring_desc) > VIRTQ_MAX_CHAIN)
				return fail(q, "bad indirect table length");
			table = gmem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return fail(q, "indirect table outside guest RAM");
			size = d.len / sizeof(struct vring_desc);
			seen = 0;
			idx = 0;
			in_indirect = true;
			continue;
		}
		if (c->nr_r + c->nr_w >= VIRTQ_MAX_CHAIN)
			return fail(q, "descriptor chain longer than the queue");
		void *p = NULL;
		if (d.len) {
			p = gmem_ptr(q->mem, d.addr, d.len);
			if (!p)
				return fail(q, "buffer outside guest RAM");
		}
		struct iovec *v = &c->iov[c->nr_r + c->nr_w];
		v->iov_base = p;
		v->iov_len = d.len;
		if (d.flags & VRING_DESC_F_WRITE) {
			c->nr_w++;
			c->w_len += d.len;
		} else {
			if (c->nr_w)
				return fail(q, "readable buffer after a writable one");
			c->nr_r++;
			c->r_len += d.len;
		}
		/* Each length is < 4 GiB and there are at most VIRTQ_MAX_CHAIN, so
		 * the sums cannot overflow; cap them for the device's sake. */
		if (c->r_len > q->max_bytes || c->w_len > q->max_bytes)
			return fail(q, "descriptor chain too large");
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	if (!q->s.ready || q->broken)
		return 0;
	uint16_t avail_idx = load16(&q->avail->idx);
	uint16_t pending = (uint16_t)(avail_idx - q->s.last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->s.num)
		return fail(q, "available index moved by more than the queue size");
	uint16_t head =
		__atomic_load_n(&q->avail->ring[q->s.last_avail % q->s.num], __ATOMIC_RELAXED);
	if (head >= q->s.num)
		return fail(q, "available ring entry out of range");
	int r = walk(q, head, c);
	if (r)
		return r;
	q->s.last_avail++;
	q->chains++;
	q->tx_bytes += c->r_len;
	q->last_r_len = c->r_len;
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->s.last_avail--;
	q->chains--;
	q->tx_bytes -= q->last_r_len;
	q->last_r_len = 0;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	if (!q->s.ready || !q->used)
		return;
	struct vring_used_elem e = {.id = head, .len = len};
	memcpy(&q->used->ring[q->s.used_idx % q->s.num], &e, sizeof(e));
	q->s.used_idx++;
	store16(&q->used->idx, q->s.used_idx); /* release: the entry is visible first */
	q->pushed++;
	q->rx_bytes += len;
}

bool virtq_need_interrupt(struct virtq *q)
{
	if (!q->pushed || !q->s.ready)
		return false;
	q->pushed = 0;
	/* Our used->idx store must be visible before we read the driver's
	 * suppression state, or both sides may decide to wait. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		uint16_t used_event = load16(&q->avail->ring[q->s.num]);
		uint16_t old = q->s.signalled_used, now = q->s.used_idx;
		bool need = !q->s.signalled_valid || vring_need_event(used_event, now, old);
		q->s.signalled_used = now;
		q->s.signalled_valid = true;
		return need;
	}
	return !(load16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->s.ready || q->broken)
		return false;
	if (q->event_idx) /* avail_event lives just after the used ring */
		store16(&q->used->ring[q->s.num], q->s.last_avail);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_has_avail(q);
}

int virtq_slice(const struct virtq_chain *c, bool w, size_t off, size_t len, struct iovec *out)
{
	int first = w ? c->nr_r : 0, end = w ? c->nr_r + c->nr_w : c->nr_r, n = 0;
	for (int i = first; i < end && len; i++) {
		size_t l = c->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len ? l - off : len;
		out[n].iov_base = (uint8_t *)c->iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

size_t virtq_read(const struct virtq_chain *c, size_t off, void *dst, size_t len)
{
	struct iovec v[VIRTQ_MAX_CHAIN];
	int n = virtq_slice(c, false, off, len, v);
	size_t done = 0;
	for (int i = 0; i < n; i++) {
		memcpy((uint8_t *)dst + done, v[i].iov_base, v[i].iov_len);
		done += v[i].iov_len;
	}
	return done;
}

size_t virtq_write(const struct virtq_chain *c, size_t off, const void *src, size_t len)
{
	struct iovec v[VIRTQ_MAX_CHAIN];
	int n = virtq_slice(c, true, off, len, v);
	size_t done = 0;
	for (int i = 0; i < n; i++) {
		memcpy(v[i].iov_base, (const uint8_t *)src + done, v[i].iov_len);
		done += v[i].iov_len;
	}
	return done;
}
