/* vsockecho: the guest end of a virtio-vsock stream, written against the
 * raw packet protocol (a minimal driver, enough for a test).
 *   vsockecho listen PORT        accept one stream on PORT, echo what
 *                                arrives until the host closes it
 *   vsockecho connect PORT MSG   connect to the host's PORT, send MSG,
 *                                print the reply, close */
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "wrt_virtio.h"

#define QSIZE	  8
#define HDR	  sizeof(struct virtio_vsock_hdr)
#define PAYLOAD	  4096
#define BUF_ALLOC 65536
#define MY_PORT	  5000

static struct wrt_virtio dev;
static struct wrt_vq rx, tx;
static uint8_t rx_ring[WRT_VQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_ring[WRT_VQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t rx_buf[QSIZE][HDR + PAYLOAD];
static uint8_t tx_buf[HDR + PAYLOAD];
static uint64_t cid;
static uint32_t fwd_cnt; /* payload bytes we consumed */

static void send(uint16_t op, uint32_t src, uint32_t dst, uint32_t flags, const void *p,
		 uint32_t len)
{
	struct virtio_vsock_hdr h = {
		.src_cid = cid,
		.dst_cid = 2,
		.src_port = src,
		.dst_port = dst,
		.len = len,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = BUF_ALLOC,
		.fwd_cnt = fwd_cnt,
	};
	memcpy(tx_buf, &h, HDR);
	memcpy(tx_buf + HDR, p, len);
	struct wrt_buf b = {tx_buf, (uint32_t)HDR + len, 0};
	wrt_vq_add(&tx, &b, 1);
	wrt_vq_kick(&tx);
	wrt_vq_wait(&tx, NULL, 2000000000ull);
}

/* Next packet for us: header in *h, payload copied to p (len bytes max). */
static int recv(struct virtio_vsock_hdr *h, char *p, uint32_t max)
{
	uint32_t got;
	int head = wrt_vq_wait(&rx, &got, 5000000000ull);
	if (head < 0 || got < HDR)
		return -1;
	memcpy(h, rx_buf[head], HDR);
	uint32_t n = h->len < max ? h->len : max;
	if (n > got - HDR)
		n = got - HDR;
	memcpy(p, rx_buf[head] + HDR, n);
	p[n] = 0;
	struct wrt_buf b = {rx_buf[head], HDR + PAYLOAD, 1}; /* repost: head == slot */
	wrt_vq_add(&rx, &b, 1);
	wrt_vq_kick(&rx);
	return (int)n;
}

static int listen_mode(uint32_t port)
{
	static char data[PAYLOAD + 1];
	struct virtio_vsock_hdr h;
	uint32_t peer = 0, echoed = 0;
	rt_printf("vsockecho: listening on port %u\n", port);
	for (;;) {
		int n = recv(&h, data, PAYLOAD);
		if (n < 0)
			return 1;
		if (h.op == VIRTIO_VSOCK_OP_REQUEST && h.dst_port == port && !peer) {
			peer = h.src_port;
			send(VIRTIO_VSOCK_OP_RESPONSE, port, peer, 0, NULL, 0);
		} else if (h.op == VIRTIO_VSOCK_OP_RW && h.src_port == peer && peer) {
			fwd_cnt += (uint32_t)n;
			send(VIRTIO_VSOCK_OP_RW, port, peer, 0, data, (uint32_t)n);
			echoed += (uint32_t)n;
		} else if (h.op == VIRTIO_VSOCK_OP_SHUTDOWN || h.op == VIRTIO_VSOCK_OP_RST) {
			if (h.op == VIRTIO_VSOCK_OP_SHUTDOWN)
				send(VIRTIO_VSOCK_OP_RST, port, peer, 0, NULL, 0);
			rt_printf("vsockecho: echoed %u bytes\n", echoed);
			return echoed ? 0 : 1;
		}
	}
}

static int connect_mode(uint32_t port, const char *msg)
{
	static char data[PAYLOAD + 1];
	struct virtio_vsock_hdr h;
	send(VIRTIO_VSOCK_OP_REQUEST, MY_PORT, port, 0, NULL, 0);
	if (recv(&h, data, PAYLOAD) < 0 || h.op != VIRTIO_VSOCK_OP_RESPONSE) {
		rt_printf("vsockecho: connection to port %u refused (op %u)\n", port, h.op);
		return 1;
	}
	size_t len = strlen(msg);
	send(VIRTIO_VSOCK_OP_RW, MY_PORT, port, 0, msg, (uint32_t)len);
	size_t got = 0;
	static char reply[PAYLOAD + 1];
	while (got < len) {
		int n = recv(&h, data, PAYLOAD);
		if (n < 0 || h.op == VIRTIO_VSOCK_OP_RST)
			return 1;
		if (h.op != VIRTIO_VSOCK_OP_RW)
			continue; /* credit updates */
		memcpy(reply + got, data, (size_t)n);
		got += (size_t)n;
		fwd_cnt += (uint32_t)n;
	}
	reply[got] = 0;
	rt_printf("vsockecho: reply: %s\n", reply);
	send(VIRTIO_VSOCK_OP_SHUTDOWN, MY_PORT, port,
	     VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	long long port = argc > 2 ? rt_atoll(argv[2]) : -1;
	if (argc < 3 || port < 0 || (strcmp(argv[1], "listen") && strcmp(argv[1], "connect")) ||
	    (!strcmp(argv[1], "connect") && argc < 4)) {
		rt_puts("usage: vsockecho listen PORT | connect PORT MSG");
		return 2;
	}
	if (wrt_virtio_find(VIRTIO_ID_VSOCK, 0, &dev) || wrt_virtio_init(&dev, 0) ||
	    wrt_vq_init(&dev, &rx, 0, QSIZE, rx_ring) ||
	    wrt_vq_init(&dev, &tx, 1, QSIZE, tx_ring)) {
		rt_puts("vsockecho: no virtio-vsock device (run with --vsock PATH)");
		return 1;
	}
	wrt_virtio_config(&dev, 0, &cid, sizeof(cid));
	for (int i = 0; i < QSIZE; i++) {
		struct wrt_buf b = {rx_buf[i], HDR + PAYLOAD, 1};
		wrt_vq_add(&rx, &b, 1);
	}
	wrt_virtio_ready(&dev);
	wrt_vq_kick(&rx);
	rt_printf("vsockecho: cid %lu\n", (unsigned long)cid);
	return !strcmp(argv[1], "listen") ? listen_mode((uint32_t)port)
					  : connect_mode((uint32_t)port, argv[3]);
}
