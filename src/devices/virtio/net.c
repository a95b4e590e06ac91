/* virtio-net (device ID 1) on a TAP interface. Queue 0 receives (frames
 * from the TAP into the guest's writable buffers), queue 1 transmits. Each
 * frame carries the 12-byte struct virtio_net_hdr_v1, which the TAP speaks
 * too (IFF_VNET_HDR), so checksum and segmentation offloads pass straight
 * through: the guest may send 64 KiB TCP segments that the host kernel
 * splits, and receive them whole.
 *
 * The TAP fd is edge-triggered in the I/O loop. Receive drains it until it
 * is empty or the guest has no buffers left; in the second case it waits for
 * the guest's next receive-queue notify. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "util/util.h"
#include "vmm/ioloop.h"

#define RXQ	      0
#define TXQ	      1
#define NET_HDR	      sizeof(struct virtio_net_hdr_v1) /* 12: always, with VERSION_1 */
#define NET_MAX_FRAME (NET_HDR + 65550)		       /* a 64 KiB GSO frame with its headers */

struct virtio_net {
	struct virtio_dev dev;
	int tap;
	bool is_tap; /* a real TAP (not a test socket): offloads can be set */
	char ifname[IFNAMSIZ];
	struct virtq_chain chain;
	/* Rate limiting, one limiter per direction (queue): a frame the
	 * limiter holds back waits (in the TAP, or in the transmit ring) and
	 * that queue is served again when its timer fires. */
	struct net_limit {
		struct virtio_net *n;
		int q;
		struct ratelimit rl;
		struct ioloop_timer timer;
		bool throttled;
	} lim[2];
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tx_dropped;
};

static struct virtio_net *to_net(struct virtio_dev *d)
{
	return (struct virtio_net *)d;
}

/* Nanoseconds queue qi must wait before a frame of `bytes` (0: not known
 * yet) may go, the timer armed for it; 0: go. */
static uint64_t held_back(struct virtio_net *n, int qi, uint64_t bytes)
{
	struct net_limit *l = &n->lim[qi];
	if (!ratelimit_on(&l->rl))
		return 0;
	uint64_t w = ratelimit_wait(&l->rl, bytes, util_now_ns());
	if (w) {
		l->throttled = true;
		ioloop_timer_arm(&l->timer, w);
	}
	return w;
}

static void net_rx(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *q = &d->vq[RXQ];
	struct virtq_chain *c = &n->chain;
	if (n->lim[RXQ].throttled)
		return; /* the frames wait in the TAP until the timer fires */
	for (;;) {
		int r = virtio_pop(d, RXQ, c);
		if (r == 0 && virtq_enable_notify(q))
			continue;
		if (r <= 0) /* no buffers: the next receive notify resumes us */
			break;
		if (c->nr_r || c->w_len < NET_HDR) {
			virtio_needs_reset(d,
					   c->nr_r ? "net receive buffer is device-readable"
						   : "net receive buffer smaller than the header");
			break;
		}
		/* The frame's size is known only once read: it is charged after,
		 * and the next one waits while the bucket owes. */
		if (held_back(n, RXQ, 0)) {
			virtq_unpop(q);
			break;
		}
		ssize_t k = readv(n->tap, &c->iov[0], c->nr_w);
		if (k < 0) {
			virtq_unpop(q);
			break; /* EAGAIN: the TAP is empty; edge-triggered epoll calls again */
		}
		/* A frame longer than the buffers is cut; never claim more than fits. */
		uint32_t len = (uint64_t)k < c->w_len ? (uint32_t)k : (uint32_t)c->w_len;
		/* The TAP writes the 10-byte legacy header and skips num_buffers;
		 * without MRG_RXBUF the spec wants it to be 1. */
		uint16_t one = 1;
		virtq_write(c, offsetof(struct virtio_net_hdr_v1, num_buffers), &one, sizeof(one));
		n->rx_packets++;
		n->rx_bytes += len;
		ratelimit_charge(&n->lim[RXQ].rl, len > NET_HDR ? len - NET_HDR : 0);
		virtq_push(q, c->head, len);
	}
	virtio_signal_used(d, q);
}

static void net_tx(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *q = &d->vq[TXQ];
	struct virtq_chain *c = &n->chain;
	if (n->lim[TXQ].throttled)
		return; /* the timer serves the ring when the limiter allows */
	for (;;) {
		int r = virtio_pop(d, TXQ, c);
		if (r == 0 && virtq_enable_notify(q))
			continue;
		if (r <= 0)
			break;
		if (c->nr_w) {
			virtio_needs_reset(d, "net transmit buffer is device-writable");
			break;
		}
		uint64_t bytes = c->r_len > NET_HDR ? c->r_len - NET_HDR : 0;
		if (held_back(n, TXQ, bytes)) {
			virtq_unpop(q);
			break;
		}
		ratelimit_charge(&n->lim[TXQ].rl, bytes);
		if (c->r_len < NET_HDR || c->r_len > NET_MAX_FRAME) {
			virtio_guest_error(d, "net frame too short or too long: dropped");
			n->tx_dropped++;
		} else {
			ssize_t k;
			do
				k = writev(n->tap, c->iov, c->nr_r);
			while (k < 0 && errno == EINTR);
			if (k < 0) {
				n->tx_dropped++; /* the host refused it, as a full NIC would */
			} else {
				n->tx_packets++;
				n->tx_bytes += c->r_len - NET_HDR;
			}
		}
		virtq_push(q, c->head, 0);
	}
	virtio_signal_used(d, q);
}

static void net_notify(struct virtio_dev *d, int q)
{
	if (q == RXQ)
		net_rx(to_net(d));
	else if (q == TXQ)
		net_tx(to_net(d));
}

static void on_timer(void *opaque)
{
	struct net_limit *l = opaque;
	struct virtio_net *n = l->n;
	pthread_mutex_lock(&n->dev.lock);
	l->throttled = false;
	if (virtio_running(&n->dev) && n->dev.vq[l->q].s.ready)
		l->q == RXQ ? net_rx(n) : net_tx(n);
	pthread_mutex_unlock(&n->dev.lock);
}

static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	for (int i = 0; i < 2; i++) {
		n->lim[i].throttled = false;
		ioloop_timer_arm(&n->lim[i].timer, 0);
	}
}

static void on_tap(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	(void)events;
	pthread_mutex_lock(&n->dev.lock);
	if (virtio_running(&n->dev) && n->dev.vq[RXQ].s.ready)
		net_rx(n);
	pthread_mutex_unlock(&n->dev.lock);
}

/* The TAP may hand us only what the guest said it can take. */
static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	uint64_t f = d->t.driver_features;
	unsigned off = 0;
	if (f & 1ull << VIRTIO_NET_F_GUEST_CSUM) {
		off |= TUN_F_CSUM;
		if (f & 1ull << VIRTIO_NET_F_GUEST_TSO4)
			off |= TUN_F_TSO4;
		if (f & 1ull << VIRTIO_NET_F_GUEST_TSO6)
			off |= TUN_F_TSO6;
		if (f & 1ull << VIRTIO_NET_F_GUEST_ECN)
			off |= TUN_F_TSO_ECN;
	}
	if (n->is_tap && ioctl(n->tap, TUNSETOFFLOAD, off) < 0)
		return -errno;
	return 0;
}

static int net_start(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	for (int i = 0; i < 2; i++) {
		struct net_limit *l = &n->lim[i];
		int r = ratelimit_on(&l->rl) ? ioloop_timer_init(d->loop, &l->timer, on_timer, l)
					     : 0;
		if (r)
			return r;
	}
	return ioloop_add(d->loop, n->tap, EPOLLIN | EPOLLET, on_tap, n);
}

static void net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	if (n->tap >= 0)
		close(n->tap);
	for (int i = 0; i < 2; i++)
		ioloop_timer_close(&n->lim[i].timer);
	free(n);
}

static void net_stats(struct virtio_dev *d, int fd)
{
	struct virtio_net *n = to_net(d);
	dprintf(fd,
		"wisp: virtio-net %s: rx %" PRIu64 " packets (%" PRIu64 " bytes) tx %" PRIu64
		" packets (%" PRIu64 " bytes) tx dropped %" PRIu64 "\n",
		n->ifname, n->rx_packets, n->rx_bytes, n->tx_packets, n->tx_bytes, n->tx_dropped);
	if (ratelimit_on(&n->lim[RXQ].rl) || ratelimit_on(&n->lim[TXQ].rl))
		dprintf(fd,
			"wisp: virtio-net %s: rate limited: rx held back %" PRIu64
			" times, tx %" PRIu64 "\n",
			n->ifname, n->lim[RXQ].rl.throttled, n->lim[TXQ].rl.throttled);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.snapshot = true, /* the TAP is the host's; frames in flight are lost, as on a wire */
	.device_id = VIRTIO_ID_NET,
	.nr_queues = 2,
	.notify = net_notify,
	.activate = net_activate,
	.reset = net_reset,
	.start = net_start,
	.destroy = net_destroy,
	.stats = net_stats,
};

static int open_tap(const char *name, char *err, size_t errlen)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "--net tap=%s: /dev/net/tun: %s", name, strerror(errno));
		return -1;
	}
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int hdr = NET_HDR;
	const char *why = NULL;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		why = errno == EPERM   ? "permission denied (create it first with 'ip tuntap add "
					 "NAME mode tap user USER', or run as root)"
		      : errno == EBUSY ? "already in use"
		      : errno == EINVAL
			      ? "exists but is not a TAP with these flags (tun, or multi-queue?)"
			      : strerror(errno);
	else if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		why = strerror(errno);
	if (why) {
		snprintf(err, errlen, "--net tap=%s: %s", name, why);
		close(fd);
		return -1;
	}
	return fd;
}

struct virtio_dev *virtio_net_create(const struct virtio_net_opts *o, char *err, size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		n->lim[i] = (struct net_limit){.n = n, .q = i, .timer.fd = -1};
		ratelimit_init(&n->lim[i].rl, o->limit, util_now_ns());
	}
	n->is_tap = o->tap_fd < 0;
	n->tap = n->is_tap ? open_tap(o->tap, err, errlen) : o->tap_fd;
	if (n->tap < 0) {
		free(n);
		return NULL;
	}
	snprintf(n->ifname, sizeof(n->ifname), "%s", o->tap ? o->tap : "socket");
	uint64_t f = 1ull << VIRTIO_NET_F_MAC;
	if (n->is_tap) /* offloads need the TAP's vnet header support */
		f |= 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM |
		     1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_GUEST_TSO6 |
		     1ull << VIRTIO_NET_F_GUEST_ECN | 1ull << VIRTIO_NET_F_HOST_TSO4 |
		     1ull << VIRTIO_NET_F_HOST_TSO6 | 1ull << VIRTIO_NET_F_HOST_ECN;
	if (virtio_dev_init(&n->dev, &net_ops, f, offsetof(struct virtio_net_config, status))) {
		net_destroy(&n->dev);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(n->dev.config, o->mac, 6);
	n->dev.vq[TXQ].max_bytes = NET_MAX_FRAME * 2; /* beyond: malformed, not a frame */
	return &n->dev;
}

void virtio_net_set_mac(struct virtio_dev *d, const uint8_t mac[6])
{
	memcpy(d->config, mac, 6);
}
