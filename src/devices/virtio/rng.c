/* virtio-rng (device ID 4): one queue of device-writable buffers, filled
 * from the host's getrandom(). The whole request costs the guest one notify
 * (an ioeventfd, no userspace exit) however many bytes it asks for, where an
 * emulated RNG register costs one exit per 4 bytes. */
#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "devices/virtio/virtio.h"

/* Bytes served per chain at most: bounds the time one request holds the
 * I/O thread; the driver just gets a shorter answer. */
#define RNG_MAX_PER_CHAIN (1u << 20)

struct virtio_rng {
	struct virtio_dev dev; /* first: the transport casts back */
	uint64_t bytes;	       /* served, for --stats */
	struct virtq_chain chain;
};

/* Fill [p, p+len) from getrandom; returns bytes written. */
static size_t fill(uint8_t *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

static void rng_notify(struct virtio_dev *d, int qi)
{
	struct virtio_rng *r = (struct virtio_rng *)d;
	struct virtq *q = &d->vq[qi];
	struct virtq_chain *c = &r->chain;
	for (;;) {
		int n = virtio_pop(d, qi, c);
		if (n == 0 && virtq_enable_notify(q))
			continue;
		if (n <= 0)
			break;
		if (c->nr_r) {
			virtio_needs_reset(d, "rng request has a device-readable buffer");
			break;
		}
		size_t want = c->w_len < RNG_MAX_PER_CHAIN ? c->w_len : RNG_MAX_PER_CHAIN, got = 0;
		for (int i = 0; i < c->nr_w && got < want; i++) {
			size_t l = c->iov[i].iov_len < want - got ? c->iov[i].iov_len : want - got;
			size_t k = fill(c->iov[i].iov_base, l);
			got += k;
			if (k < l)
				break;
		}
		r->bytes += got;
		virtq_push(q, c->head, (uint32_t)got);
	}
	virtio_signal_used(d, q);
}

static void rng_destroy(struct virtio_dev *d)
{
	free(d);
}

static void rng_stats(struct virtio_dev *d, int fd)
{
	dprintf(fd, "wisp: virtio-rng: bytes %" PRIu64 "\n", ((struct virtio_rng *)d)->bytes);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.snapshot = true, /* no state besides the queue */
	.device_id = VIRTIO_ID_RNG,
	.nr_queues = 1,
	.notify = rng_notify,
	.destroy = rng_destroy,
	.stats = rng_stats,
};

struct virtio_dev *virtio_rng_create(char *err, size_t errlen)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r || virtio_dev_init(&r->dev, &rng_ops, 0, 0)) {
		free(r);
		snprintf(err, errlen, "virtio-rng: out of memory");
		return NULL;
	}
	return &r->dev;
}
