/* Polling virtio-net driver: receive buffers stay posted (one frame each,
 * after the 12-byte virtio_net_hdr_v1); a frame is sent from a copy in one
 * of the transmit buffers, reclaimed when the device is done with it. No
 * offloads are negotiated, so headers are all zero both ways. */
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "wrt_virtio.h"

#define NET_QSIZE 32
#define NET_HDR	  sizeof(struct virtio_net_hdr_v1)
#define NET_BUF	  (NET_HDR + WRT_NET_MTU_FRAME)

static uint8_t net_rx_ring[WRT_VQ_MEM(NET_QSIZE)] __attribute__((aligned(4096)));
static uint8_t net_tx_ring[WRT_VQ_MEM(NET_QSIZE)] __attribute__((aligned(4096)));
static uint8_t net_rx_buf[NET_QSIZE][NET_BUF] __attribute__((aligned(16)));
static uint8_t net_tx_buf[NET_QSIZE][NET_BUF] __attribute__((aligned(16)));

static void post_rx(struct wrt_net *n, int i)
{
	struct wrt_buf b = {net_rx_buf[i], NET_BUF, 1};
	int head = wrt_vq_add(&n->rx, &b, 1);
	(void)head; /* one-descriptor chains: head == the buffer's slot */
}

int wrt_net_open(struct wrt_net *n, int nth)
{
	if (nth != 0 || wrt_virtio_find(VIRTIO_ID_NET, 0, &n->dev) ||
	    wrt_virtio_init(&n->dev, 1ull << VIRTIO_NET_F_MAC) ||
	    wrt_vq_init(&n->dev, &n->rx, 0, NET_QSIZE, net_rx_ring) ||
	    wrt_vq_init(&n->dev, &n->tx, 1, NET_QSIZE, net_tx_ring))
		return -1;
	wrt_virtio_config(&n->dev, 0, n->mac, 6);
	/* Descriptor i carries rx buffer i: each chain is one descriptor and the
	 * free list starts in order, so heads come back as buffer indices. */
	for (int i = 0; i < NET_QSIZE; i++)
		post_rx(n, i);
	wrt_virtio_ready(&n->dev);
	wrt_vq_kick(&n->rx);
	return 0;
}

long wrt_net_recv(struct wrt_net *n, void *buf, size_t len, uint64_t timeout_ns)
{
	uint32_t got;
	int head = wrt_vq_wait(&n->rx, &got, timeout_ns);
	if (head < 0)
		return 0;
	long frame = got > NET_HDR ? (long)(got - NET_HDR) : 0;
	if ((size_t)frame > len)
		frame = (long)len;
	memcpy(buf, net_rx_buf[head] + NET_HDR, (size_t)frame);
	/* The freed descriptor is the head just returned: repost that buffer. */
	struct wrt_buf b = {net_rx_buf[head], NET_BUF, 1};
	wrt_vq_add(&n->rx, &b, 1);
	wrt_vq_kick(&n->rx);
	return frame;
}

int wrt_net_send(struct wrt_net *n, const void *frame, size_t len)
{
	if (len > WRT_NET_MTU_FRAME)
		return -1;
	while (wrt_vq_get(&n->tx, NULL) >= 0) /* reclaim what the device sent */
		;
	if (!n->tx.nr_free && wrt_vq_wait(&n->tx, NULL, 1000000000ull) < 0)
		return -1;
	uint8_t *b = net_tx_buf[n->tx.free_head];
	memset(b, 0, NET_HDR);
	memcpy(b + NET_HDR, frame, len);
	struct wrt_buf d = {b, (uint32_t)(NET_HDR + len), 0};
	if (wrt_vq_add(&n->tx, &d, 1) < 0)
		return -1;
	wrt_vq_kick(&n->tx);
	return 0;
}
