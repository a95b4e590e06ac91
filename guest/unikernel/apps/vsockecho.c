/* vsockecho: the guest end of a virtio-vsock stream, written against the
 * raw packet protocol (a minimal driver, enough for a test).
 *   vsockecho listen PORT        accept one stream on PORT, echo what
 *                                arrives until the host closes it
 *   vsockecho connect PORT MSG   connect to the host's PORT, send MSG,
 *                                print the reply, close
 *   vsockecho serve PORT         accept streams on PORT (up to 8 at once)
 *                                and echo each, until one sends "quit\n";
 *                                on a TRANSPORT_RESET event (a restored
 *                                snapshot) drop every stream as a driver
 *                                must, after checking that the device
 *                                answers a packet on each with RST: it
 *                                must have kept none of them */
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>

#include "wrt_virtio.h"

#define QSIZE	  8
#define HDR	  sizeof(struct virtio_vsock_hdr)
#define PAYLOAD	  4096
#define BUF_ALLOC 65536
#define MY_PORT	  5000

static struct wrt_virtio dev;
static struct wrt_vq rx, tx, evq;
static uint8_t rx_ring[WRT_VQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t tx_ring[WRT_VQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t ev_ring[WRT_VQ_MEM(QSIZE)] __attribute__((aligned(4096)));
static uint8_t rx_buf[QSIZE][HDR + PAYLOAD];
static uint8_t tx_buf[HDR + PAYLOAD];
static struct virtio_vsock_event ev_buf[QSIZE];
static uint64_t cid;
static uint32_t fwd_cnt; /* payload bytes we consumed (of the one stream) */

static void send_fwd(uint16_t op, uint32_t src, uint32_t dst, uint32_t flags, const void *p,
		     uint32_t len, uint32_t fwd)
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
		.fwd_cnt = fwd,
	};
	memcpy(tx_buf, &h, HDR);
	memcpy(tx_buf + HDR, p, len);
	struct wrt_buf b = {tx_buf, (uint32_t)HDR + len, 0};
	wrt_vq_add(&tx, &b, 1);
	wrt_vq_kick(&tx);
	wrt_vq_wait(&tx, NULL, 2000000000ull);
}

static void send(uint16_t op, uint32_t src, uint32_t dst, uint32_t flags, const void *p,
		 uint32_t len)
{
	send_fwd(op, src, dst, flags, p, len, fwd_cnt);
}

/* Take the packet in receive buffer `head` (got bytes written): header in
 * *h, payload copied to p (max bytes at most); the buffer is posted again. */
static int take(int head, uint32_t got, struct virtio_vsock_hdr *h, char *p, uint32_t max)
{
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

/* Next packet for us: header in *h, payload copied to p (len bytes max). */
static int recv(struct virtio_vsock_hdr *h, char *p, uint32_t max)
{
	uint32_t got;
	int head = wrt_vq_wait(&rx, &got, 5000000000ull);
	return take(head, got, h, p, max);
}

/* Wait up to timeout_ns for a packet or an event: 0 (a packet, as recv,
 * its payload length in *plen) or 1 (*event set), -1 on timeout. Both queues
 * share the device's POLL bit. */
static int recv_or_event(struct virtio_vsock_hdr *h, char *p, uint32_t max, uint32_t *plen,
			 uint32_t *event, uint64_t timeout_ns)
{
	uint64_t start = rt_monotonic_ns();
	for (;;) {
		uint32_t got;
		int head = wrt_vq_get(&evq, &got);
		if (head >= 0) {
			*event = got >= sizeof(*ev_buf) ? ev_buf[head].id : 0xffffffffu;
			struct wrt_buf b = {&ev_buf[head], sizeof(*ev_buf), 1};
			wrt_vq_add(&evq, &b, 1);
			wrt_vq_kick(&evq);
			return 1;
		}
		head = wrt_vq_get(&rx, &got);
		if (head >= 0) {
			int n = take(head, got, h, p, max);
			if (n < 0)
				return -1;
			*plen = (uint32_t)n;
			return 0;
		}
		uint64_t spent = rt_monotonic_ns() - start;
		if (timeout_ns != UINT64_MAX && spent >= timeout_ns)
			return -1;
		rt_poll(timeout_ns == UINT64_MAX ? UINT64_MAX : timeout_ns - spent);
	}
}

#define MAX_STREAMS 8
static struct stream {
	uint32_t peer; /* host port; 0: slot free */
	uint32_t fwd;  /* payload bytes of it we consumed */
	uint32_t echoed;
} streams[MAX_STREAMS];

static struct stream *stream_find(uint32_t peer)
{
	for (int i = 0; i < MAX_STREAMS; i++)
		if (streams[i].peer == peer && peer)
			return &streams[i];
	return NULL;
}

static int streams_open(void)
{
	int n = 0;
	for (int i = 0; i < MAX_STREAMS; i++)
		n += streams[i].peer != 0;
	return n;
}

/* TRANSPORT_RESET: the device lost every stream (a restore). First check
 * that it kept none: a CREDIT_REQUEST on each must come back as an RST
 * (test only: a driver simply drops them). Then drop them, and read the
 * CID again, as the spec asks. */
static void transport_reset(uint32_t port)
{
	static char data[PAYLOAD + 1];
	int n = streams_open(), rst = 0;
	rt_printf("vsockecho: transport reset: %d stream(s) open\n", n);
	for (int i = 0; i < MAX_STREAMS; i++)
		if (streams[i].peer)
			send_fwd(VIRTIO_VSOCK_OP_CREDIT_REQUEST, port, streams[i].peer, 0, NULL, 0,
				 streams[i].fwd);
	uint64_t start = rt_monotonic_ns();
	while (rst < n && rt_monotonic_ns() - start < 5000000000ull) {
		struct virtio_vsock_hdr h;
		uint32_t ev, n;
		int r = recv_or_event(&h, data, PAYLOAD, &n, &ev, 1000000000ull);
		if (r != 0)
			continue;
		struct stream *s = stream_find(h.src_port);
		if (s && h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == port) {
			rt_printf("vsockecho: old stream from host port %u: RST from the device\n",
				  s->peer);
			s->peer = 0;
			rst++;
		} else if (s) {
			rt_printf(
				"vsockecho: old stream from host port %u: op %u from the device\n",
				s->peer, h.op);
		}
	}
	for (int i = 0; i < MAX_STREAMS; i++)
		streams[i].peer = 0;
	wrt_virtio_config(&dev, 0, &cid, sizeof(cid));
	rt_printf("vsockecho: %d of %d old stream(s) reset by the device, cid %lu\n", rst, n,
		  (unsigned long)cid);
}

static int serve_mode(uint32_t port)
{
	static char data[PAYLOAD + 1];
	rt_printf("vsockecho: serving port %u\n", port);
	for (;;) {
		struct virtio_vsock_hdr h;
		uint32_t ev, n;
		int r = recv_or_event(&h, data, PAYLOAD, &n, &ev, UINT64_MAX);
		if (r < 0)
			return 1;
		if (r == 1) {
			if (ev == VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)
				transport_reset(port);
			else
				rt_printf("vsockecho: unknown event %u\n", ev);
			continue;
		}
		struct stream *s = stream_find(h.src_port);
		if (h.op == VIRTIO_VSOCK_OP_REQUEST && h.dst_port == port && !s) {
			for (int i = 0; i < MAX_STREAMS && !s; i++)
				if (!streams[i].peer)
					s = &streams[i];
			if (!s) { /* full: refused */
				send_fwd(VIRTIO_VSOCK_OP_RST, port, h.src_port, 0, NULL, 0, 0);
				continue;
			}
			*s = (struct stream){.peer = h.src_port};
			send_fwd(VIRTIO_VSOCK_OP_RESPONSE, port, s->peer, 0, NULL, 0, 0);
			rt_printf("vsockecho: stream from host port %u open (%d open)\n", s->peer,
				  streams_open());
		} else if (!s) {
			if (h.op != VIRTIO_VSOCK_OP_RST)
				send_fwd(VIRTIO_VSOCK_OP_RST, port, h.src_port, 0, NULL, 0, 0);
		} else if (h.op == VIRTIO_VSOCK_OP_RW) {
			s->fwd += n;
			send_fwd(VIRTIO_VSOCK_OP_RW, port, s->peer, 0, data, n, s->fwd);
			s->echoed += n;
			if (n == 5 && !memcmp(data, "quit\n", 5)) {
				rt_printf("vsockecho: quit from host port %u\n", s->peer);
				return 0;
			}
		} else if (h.op == VIRTIO_VSOCK_OP_SHUTDOWN || h.op == VIRTIO_VSOCK_OP_RST) {
			if (h.op == VIRTIO_VSOCK_OP_SHUTDOWN)
				send_fwd(VIRTIO_VSOCK_OP_RST, port, s->peer, 0, NULL, 0, s->fwd);
			rt_printf("vsockecho: stream from host port %u closed after %u bytes\n",
				  s->peer, s->echoed);
			s->peer = 0;
		}
	}
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
	if (argc < 3 || port < 0 ||
	    (strcmp(argv[1], "listen") && strcmp(argv[1], "connect") && strcmp(argv[1], "serve")) ||
	    (!strcmp(argv[1], "connect") && argc < 4)) {
		rt_puts("usage: vsockecho listen PORT | connect PORT MSG | serve PORT");
		return 2;
	}
	if (wrt_virtio_find(VIRTIO_ID_VSOCK, 0, &dev) || wrt_virtio_init(&dev, 0) ||
	    wrt_vq_init(&dev, &rx, 0, QSIZE, rx_ring) ||
	    wrt_vq_init(&dev, &tx, 1, QSIZE, tx_ring) ||
	    wrt_vq_init(&dev, &evq, 2, QSIZE, ev_ring)) {
		rt_puts("vsockecho: no virtio-vsock device (run with --vsock PATH)");
		return 1;
	}
	wrt_virtio_config(&dev, 0, &cid, sizeof(cid));
	for (int i = 0; i < QSIZE; i++) {
		struct wrt_buf b = {rx_buf[i], HDR + PAYLOAD, 1};
		wrt_vq_add(&rx, &b, 1);
		struct wrt_buf e = {&ev_buf[i], sizeof(*ev_buf), 1};
		wrt_vq_add(&evq, &e, 1);
	}
	wrt_virtio_ready(&dev);
	wrt_vq_kick(&rx);
	wrt_vq_kick(&evq);
	rt_printf("vsockecho: cid %lu\n", (unsigned long)cid);
	if (!strcmp(argv[1], "serve"))
		return serve_mode((uint32_t)port);
	return !strcmp(argv[1], "listen") ? listen_mode((uint32_t)port)
					  : connect_mode((uint32_t)port, argv[3]);
}
