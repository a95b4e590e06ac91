/* virtio-vsock (device ID 19), stream sockets only, with the host side on
 * unix sockets as Firecracker does (no vhost-vsock here):
 *  - host to guest: connect to the unix socket PATH, write "CONNECT <port>\n",
 *    read back "OK <host port>\n", then the stream is the guest's port;
 *  - guest to host: the guest connects to CID 2 port P; Wisp connects to the
 *    unix socket "PATH_P", which a host program listens on.
 * Queue 0 carries packets to the guest, queue 1 from it, queue 2 events to
 * it: the only one, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, after a restore.
 *
 * Every packet from the guest is a 44-byte header plus payload; the payload
 * length in the header is checked against the bytes actually in the chain
 * (CVE-2019-18960 was trusting it). Flow control is the virtio credit scheme:
 * the guest may have at most buf_alloc bytes unforwarded in our buffers, and
 * we send it no more than its own buf_alloc allows. A guest that breaks the
 * protocol gets its connection reset (RST), never a crash. Connections live
 * in a fixed table inside the device so that a stale event for a closed one
 * finds an unused slot instead of freed memory.
 *
 * Snapshots (as Firecracker does, and as the spec's transport reset event
 * is for): the streams' host ends are unix sockets of the process that
 * saved the VM and cannot move into a file, so they are not saved. The
 * device saves the guest's CID and where host ports go on
 * (struct virtio_vsock_state_v1); a restored device has no streams, and its
 * first act is a TRANSPORT_RESET event, on which the driver drops every
 * connected socket and reads the CID again. A packet the guest still sends
 * for an old stream finds none and is answered with RST. */
#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "util/util.h"
#include "vmm/ioloop.h"
#include "vmm/vmm.h"

#define RXQ	      0
#define TXQ	      1
#define EVQ	      2
#define HOST_CID      2
#define HDR	      sizeof(struct virtio_vsock_hdr)
#define BUF_ALLOC     (256u << 10) /* what we buffer per connection, told to the guest */
#define MAX_PAYLOAD   (64u << 10)  /* per packet, both ways */
#define MAX_CONNS     64
#define MAX_RSTS      32 /* RSTs owed to the guest for unknown connections */
#define HELLO_MAX     32 /* "CONNECT 4294967295\n" fits */
#define EPHEMERAL_MIN VIRTIO_VSOCK_EPHEMERAL_MIN /* host ports we pick for host-initiated streams */

enum conn_state {
	CONN_FREE = 0,
	CONN_HELLO,	  /* host client connected, reading "CONNECT <port>\n" */
	CONN_CONNECTING,  /* REQUEST queued or sent to the guest */
	CONN_ESTABLISHED, /* data flows */
};

/* Control packets a connection owes the guest (bits of conn.owe). */
#define OWE_REQUEST  (1u << 0)
#define OWE_RESPONSE (1u << 1)
#define OWE_CREDIT   (1u << 2)

/* What filling one receive chain came to. */
enum sent { SENT, RETRY, STUCK };

struct virtio_vsock;

struct conn {
	struct virtio_vsock *v;
	enum conn_state state;
	int fd;
	uint32_t host_port, guest_port;
	uint32_t owe;
	/* The guest's side of the credit scheme, from its last packet. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes we sent to the guest */
	/* Ours: bytes received from the guest, forwarded to the socket, and the
	 * forwarded count we last told the guest. */
	uint32_t rx_cnt, fwd_cnt, fwd_told;
	uint8_t *pend; /* from the guest, not yet taken by the socket */
	uint32_t pend_len;
	bool readable;	    /* the socket may have data (edge-triggered) */
	bool host_eof;	    /* the socket said EOF: SHUTDOWN owed or sent */
	bool guest_no_send; /* the guest shut down its sending side */
	bool guest_no_recv; /* the guest will not read any more */
};

struct virtio_vsock {
	struct virtio_dev dev;
	uint64_t cid;
	char *path;
	int listen_fd;
	uint32_t next_port;
	struct conn conns[MAX_CONNS];
	int rr; /* round-robin start for fairness between streams */
	struct {
		uint32_t src, dst; /* as in the guest's packet */
	} rst[MAX_RSTS];
	int nr_rst;
	bool reset_owed; /* a TRANSPORT_RESET event not yet given to the guest */
	struct virtq_chain chain;
	uint64_t conns_opened, bytes_to_guest, bytes_from_guest, resets, transport_resets;
};

static struct virtio_vsock *to_vsock(struct virtio_dev *d)
{
	return (struct virtio_vsock *)d;
}

static void rx_pump(struct virtio_vsock *v);

/* --- connections ----------------------------------------------------------- */

static struct conn *conn_find(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		if (c->state > CONN_HELLO && c->host_port == host_port &&
		    c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static void on_conn(void *opaque, uint32_t events);

static struct conn *conn_new(struct virtio_vsock *v, int fd, enum conn_state st)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];
		if (c->state != CONN_FREE)
			continue;
		*c = (struct conn){.v = v, .state = st, .fd = fd};
		if (ioloop_add(v->dev.loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_conn,
			       c)) {
			c->state = CONN_FREE;
			return NULL;
		}
		v->conns_opened++;
		return c;
	}
	return NULL;
}

static void conn_close(struct conn *c)
{
	ioloop_del(c->v->dev.loop, c->fd);
	close(c->fd);
	free(c->pend);
	*c = (struct conn){.state = CONN_FREE};
}

/* Close now and tell the guest, if it knows this stream, that it is gone. */
static void conn_reset(struct conn *c)
{
	struct virtio_vsock *v = c->v;
	if (c->state >= CONN_CONNECTING && v->nr_rst < MAX_RSTS) {
		v->rst[v->nr_rst].src = c->guest_port; /* as if the guest had sent */
		v->rst[v->nr_rst].dst = c->host_port;
		v->nr_rst++;
	}
	v->resets++;
	conn_close(c);
}

/* Owe the guest an RST for a packet that names no stream of ours. */
static void owe_rst(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	if (h->op == VIRTIO_VSOCK_OP_RST || v->nr_rst == MAX_RSTS)
		return; /* never answer an RST; when full the guest times out */
	v->rst[v->nr_rst].src = h->src_port;
	v->rst[v->nr_rst].dst = h->dst_port;
	v->nr_rst++;
	v->resets++;
}

/* Credit the guest has left for us to send into. */
static uint32_t peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Tell the guest about freed space once its view of it gets low. */
static void maybe_credit(struct conn *c)
{
	uint32_t guest_view_used = c->rx_cnt - c->fwd_told;
	if (c->fwd_cnt != c->fwd_told && guest_view_used >= BUF_ALLOC / 2)
		c->owe |= OWE_CREDIT;
}

/* Write as much of the pending buffer to the socket as it takes. */
static void flush_pending(struct conn *c)
{
	while (c->pend_len) {
		ssize_t k = send(c->fd, c->pend, c->pend_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0) {
			conn_reset(c);
			return;
		}
		memmove(c->pend, c->pend + k, c->pend_len - (uint32_t)k);
		c->pend_len -= (uint32_t)k;
		c->fwd_cnt += (uint32_t)k;
	}
	if (!c->pend_len && c->guest_no_send)
		shutdown(c->fd, SHUT_WR);
	maybe_credit(c);
}

/* --- guest to host ------------------------------------------------------------ */

static void guest_rw(struct conn *c, const struct virtq_chain *ch, uint32_t len)
{
	struct virtio_vsock *v = c->v;
	if (len > BUF_ALLOC - c->pend_len) { /* more than the credit we gave */
		virtio_guest_error(&v->dev, "vsock guest overran its credit");
		conn_reset(c);
		return;
	}
	c->rx_cnt += len;
	v->bytes_from_guest += len;
	struct iovec iov[VIRTQ_MAX_CHAIN];
	int n = virtq_slice(ch, false, HDR, len, iov);
	size_t sent = 0;
	if (!c->pend_len && n) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t k;
		do
			k = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (k < 0 && errno == EINTR);
		if (k < 0 && errno != EAGAIN) {
			conn_reset(c);
			return;
		}
		sent = k > 0 ? (size_t)k : 0;
		c->fwd_cnt += (uint32_t)sent;
	}
	if (sent < len) {
		if (!c->pend) {
			c->pend = malloc(BUF_ALLOC);
			if (!c->pend) {
				conn_reset(c);
				return;
			}
		}
		c->pend_len +=
			(uint32_t)virtq_read(ch, HDR + sent, c->pend + c->pend_len, len - sent);
	}
	maybe_credit(c);
}

static void guest_request(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->path, h->dst_port);
	int fd = -1;
	if (n > 0 && (size_t)n < sizeof(a.sun_path))
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* A unix-socket connect completes at once or fails (no listener, backlog
	 * full): no in-progress state to track. */
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	struct conn *c = fd >= 0 ? conn_new(v, fd, CONN_ESTABLISHED) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		owe_rst(v, h);
		return;
	}
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->owe |= OWE_RESPONSE;
	c->readable = true;
}

static void guest_packet(struct virtio_vsock *v, const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	if (virtq_read(ch, 0, &h, HDR) < HDR) {
		virtio_guest_error(&v->dev, "vsock packet shorter than its header");
		return;
	}
	if (h.src_cid != v->cid || h.dst_cid != HOST_CID || h.type != VIRTIO_VSOCK_TYPE_STREAM) {
		virtio_guest_error(&v->dev, "vsock packet with bad addresses or type");
		owe_rst(v, &h);
		return;
	}
	if (h.op == VIRTIO_VSOCK_OP_RW &&
	    (h.len > MAX_PAYLOAD || h.len > ch->r_len - HDR)) { /* CVE-2019-18960 */
		virtio_guest_error(&v->dev, "vsock payload length beyond the buffer");
		struct conn *c = conn_find(v, h.dst_port, h.src_port);
		if (c)
			conn_reset(c);
		else
			owe_rst(v, &h);
		return;
	}
	struct conn *c = conn_find(v, h.dst_port, h.src_port);
	if (h.op == VIRTIO_VSOCK_OP_REQUEST) {
		if (c)
			conn_reset(c);
		else
			guest_request(v, &h);
		return;
	}
	if (!c) {
		owe_rst(v, &h);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CONN_CONNECTING) {
			conn_reset(c);
			break;
		}
		c->state = CONN_ESTABLISHED;
		char ok[32];
		int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
		if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
			conn_reset(c);
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED)
			conn_reset(c);
		else
			guest_rw(c, ch, h.len);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* the new credit is already recorded; rx_pump uses it */
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (h.flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->guest_no_recv = true;
		if (h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_no_send = true;
		if (c->guest_no_recv && c->guest_no_send)
			conn_reset(c); /* both ways shut: the stream is over */
		else
			flush_pending(c);
		break;
	case VIRTIO_VSOCK_OP_RST:
		conn_close(c);
		break;
	default:
		virtio_guest_error(&v->dev, "vsock packet with an unknown operation");
		conn_reset(c);
		break;
	}
}

static void vsock_tx(struct virtio_vsock *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *q = &d->vq[TXQ];
	for (;;) {
		int r = virtio_pop(d, TXQ, &v->chain);
		if (r == 0 && virtq_enable_notify(q))
			continue;
		if (r <= 0)
			break;
		if (v->chain.nr_w) {
			virtio_needs_reset(d, "vsock transmit buffer is device-writable");
			break;
		}
		guest_packet(v, &v->chain);
		virtq_push(q, v->chain.head, 0);
	}
	virtio_signal_used(d, q);
	rx_pump(v); /* replies, credit, and data the new credit allows */
}

/* --- host to guest ------------------------------------------------------------ */

static void fill_hdr(struct virtio_vsock *v, struct virtio_vsock_hdr *h, struct conn *c,
		     uint16_t op)
{
	*h = (struct virtio_vsock_hdr){
		.src_cid = HOST_CID,
		.dst_cid = v->cid,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = BUF_ALLOC,
	};
	if (c) {
		h->src_port = c->host_port;
		h->dst_port = c->guest_port;
		h->fwd_cnt = c->fwd_cnt;
		c->fwd_told = c->fwd_cnt;
	}
}

/* What the connection can send now: an owed control op, else data. */
static uint16_t conn_next_op(struct conn *c)
{
	if (c->owe & OWE_REQUEST)
		return VIRTIO_VSOCK_OP_REQUEST;
	if (c->owe & OWE_RESPONSE)
		return VIRTIO_VSOCK_OP_RESPONSE;
	if (c->state == CONN_ESTABLISHED && c->readable && !c->host_eof && !c->guest_no_recv &&
	    peer_credit(c))
		return VIRTIO_VSOCK_OP_RW;
	if (c->owe & OWE_CREDIT)
		return VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	return 0;
}

/* Fill the receive chain in v->chain with op for c. RETRY: nothing sent,
 * the chain may serve other work; STUCK: it cannot (too small for data). */
static enum sent send_op(struct virtio_vsock *v, struct conn *c, uint16_t op, uint32_t *used)
{
	struct virtq_chain *ch = &v->chain;
	struct virtio_vsock_hdr h;
	fill_hdr(v, &h, c, op);
	*used = HDR;
	switch (op) {
	case VIRTIO_VSOCK_OP_REQUEST:
		c->owe &= ~OWE_REQUEST;
		break;
	case VIRTIO_VSOCK_OP_RESPONSE:
		c->owe &= ~OWE_RESPONSE;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		c->owe &= ~OWE_CREDIT;
		break;
	case VIRTIO_VSOCK_OP_RW: {
		uint64_t room = ch->w_len - HDR, credit = peer_credit(c);
		uint32_t max = (uint32_t)(room < credit ? room : credit);
		if (max > MAX_PAYLOAD)
			max = MAX_PAYLOAD;
		struct iovec iov[VIRTQ_MAX_CHAIN];
		int n = virtq_slice(ch, true, HDR, max, iov);
		if (!n) /* a buffer with no room after the header */
			return STUCK;
		ssize_t k;
		do
			k = readv(c->fd, iov, n);
		while (k < 0 && errno == EINTR);
		if (k < 0) {
			if (errno == EAGAIN)
				c->readable = false;
			else
				conn_reset(c);
			return RETRY;
		}
		if (k == 0) { /* the host closed its end: no more data from us */
			c->host_eof = true;
			h.op = VIRTIO_VSOCK_OP_SHUTDOWN;
			h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
			break;
		}
		h.len = (uint32_t)k;
		c->tx_cnt += (uint32_t)k;
		v->bytes_to_guest += (uint64_t)k;
		*used += (uint32_t)k;
		break;
	}
	}
	virtq_write(ch, 0, &h, HDR);
	return SENT;
}

static void rx_pump(struct virtio_vsock *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *q = &d->vq[RXQ];
	bool popped = false; /* v->chain holds a chain not yet used */
	for (;;) {
		/* Find work first: no chain is taken when there is none. */
		struct conn *c = NULL;
		uint16_t op = 0;
		if (!v->nr_rst) {
			for (int k = 0; k < MAX_CONNS && !op; k++) {
				int i = (v->rr + k) % MAX_CONNS;
				if (v->conns[i].state > CONN_HELLO &&
				    (op = conn_next_op(&v->conns[i])))
					c = &v->conns[i];
			}
			if (!op)
				break;
		}
		if (!popped) {
			int r = virtio_pop(d, RXQ, &v->chain);
			if (r == 0 && virtq_enable_notify(q))
				r = virtio_pop(d, RXQ, &v->chain);
			if (r <= 0)
				break; /* no buffers: the next receive notify resumes us */
			if (v->chain.nr_r || v->chain.w_len < HDR) {
				virtio_needs_reset(
					d, v->chain.nr_r
						   ? "vsock receive buffer is device-readable"
						   : "vsock receive buffer smaller than a header");
				break;
			}
			popped = true;
		}
		uint32_t used;
		if (!c) { /* an RST owed for a stream we do not know */
			struct virtio_vsock_hdr h;
			v->nr_rst--;
			fill_hdr(v, &h, NULL, VIRTIO_VSOCK_OP_RST);
			h.src_port = v->rst[v->nr_rst].dst;
			h.dst_port = v->rst[v->nr_rst].src;
			virtq_write(&v->chain, 0, &h, HDR);
			used = HDR;
		} else {
			v->rr = (int)(c - v->conns + 1) % MAX_CONNS;
			enum sent s = send_op(v, c, op, &used);
			if (s == STUCK)
				break;
			if (s == RETRY) /* the stream's state changed: look again */
				continue;
		}
		virtq_push(q, v->chain.head, used);
		popped = false;
	}
	if (popped)
		virtq_unpop(q);
	virtio_signal_used(d, q);
}

/* --- host sockets --------------------------------------------------------------- */

/* Read "CONNECT <port>\n" without taking any byte after it. */
static void host_hello(struct conn *c)
{
	char buf[HELLO_MAX + 1];
	ssize_t k = recv(c->fd, buf, HELLO_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (k < 0 && errno == EAGAIN)
		return;
	if (k <= 0) {
		conn_close(c);
		return;
	}
	buf[k] = 0;
	char *nl = memchr(buf, '\n', (size_t)k);
	if (!nl) {
		if (k == HELLO_MAX)
			conn_close(c); /* no command is that long */
		return;
	}
	size_t line = (size_t)(nl - buf) + 1;
	if (recv(c->fd, buf, line, MSG_DONTWAIT) != (ssize_t)line) {
		conn_close(c);
		return;
	}
	*nl = 0;
	unsigned port;
	char end;
	if (sscanf(buf, "CONNECT %u%c", &port, &end) != 1) {
		conn_close(c);
		return;
	}
	struct virtio_vsock *v = c->v;
	c->guest_port = port;
	do { /* a host port that no other stream to this guest port uses */
		c->host_port = v->next_port++;
		if (v->next_port < EPHEMERAL_MIN)
			v->next_port = EPHEMERAL_MIN;
	} while (conn_find(v, c->host_port, port));
	c->state = CONN_CONNECTING;
	c->owe |= OWE_REQUEST;
	c->readable = true; /* bytes may follow the line, and no new edge will come */
}

static void on_conn(void *opaque, uint32_t events)
{
	struct conn *c = opaque;
	struct virtio_vsock *v = c->v;
	pthread_mutex_lock(&v->dev.lock);
	if (c->state == CONN_HELLO) {
		host_hello(c);
	} else if (c->state != CONN_FREE) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			c->readable = true;
		if (events & EPOLLOUT && c->pend_len)
			flush_pending(c);
	}
	if (virtio_running(&v->dev))
		rx_pump(v);
	pthread_mutex_unlock(&v->dev.lock);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct virtio_vsock *v = opaque;
	(void)events;
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		pthread_mutex_lock(&v->dev.lock);
		struct conn *c = virtio_running(&v->dev) ? conn_new(v, fd, CONN_HELLO) : NULL;
		pthread_mutex_unlock(&v->dev.lock);
		if (!c)
			close(fd); /* guest not up, or too many streams: refused */
	}
}

/* --- device ----------------------------------------------------------------------- */

/* Give the guest the TRANSPORT_RESET event it is owed, if it has left a
 * buffer in the event queue (else its next notify of that queue does). */
static void event_send(struct virtio_vsock *v)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *q = &d->vq[EVQ];
	if (!v->reset_owed || !q->s.ready)
		return;
	int r = virtio_pop(d, EVQ, &v->chain);
	if (r == 0 && virtq_enable_notify(q))
		r = virtio_pop(d, EVQ, &v->chain);
	if (r <= 0)
		return;
	struct virtio_vsock_event e = {.id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET};
	if (v->chain.nr_r || v->chain.w_len < sizeof(e)) {
		virtio_needs_reset(d, v->chain.nr_r ? "vsock event buffer is device-readable"
						    : "vsock event buffer too small");
		return;
	}
	virtq_write(&v->chain, 0, &e, sizeof(e));
	virtq_push(q, v->chain.head, sizeof(e));
	v->reset_owed = false;
	v->transport_resets++;
	virtio_signal_used(d, q);
}

static void vsock_notify(struct virtio_dev *d, int q)
{
	struct virtio_vsock *v = to_vsock(d);
	if (q == TXQ)
		vsock_tx(v);
	else if (q == RXQ)
		rx_pump(v);
	else if (q == EVQ)
		event_send(v);
}

/* A reset (or a new driver) forgets every stream: close them all. This may
 * run on the vCPU thread: the table is never freed, so an event already
 * fetched for a closed stream finds a free slot. A new driver needs no
 * transport reset event: it has no streams. */
static void vsock_reset(struct virtio_dev *d)
{
	struct virtio_vsock *v = to_vsock(d);
	for (int i = 0; i < MAX_CONNS; i++)
		if (v->conns[i].state != CONN_FREE)
			conn_close(&v->conns[i]);
	v->nr_rst = 0;
	v->reset_owed = false;
}

/* --- snapshots --------------------------------------------------------------------- */

static int vsock_save_state(struct virtio_dev *d, struct wbuf *out, uint32_t *version)
{
	struct virtio_vsock *v = to_vsock(d);
	struct virtio_vsock_state_v1 s = {.guest_cid = v->cid, .next_port = v->next_port};
	wbuf_put(out, &s, sizeof(s));
	*version = 1;
	return 0;
}

/* After the transport's restore, which reset the device first: no stream,
 * no RST owed, no credit or pending bytes of any old stream remain. */
static int vsock_restore_state(struct virtio_dev *d, const void *buf, size_t len, uint32_t version,
			       char *err, size_t errlen)
{
	struct virtio_vsock *v = to_vsock(d);
	struct virtio_vsock_state_v1 s;
	int r = device_state_check("vsock state", version, len, 1, sizeof(s), false, err, errlen);
	if (r)
		return r;
	memcpy(&s, buf, sizeof(s));
	/* The CID is the restoring VM's (its configuration): a clone has a CID
	 * of its own. A running driver learns it from the transport reset
	 * below (Linux reads guest_cid again on VIRTIO_VSOCK_EVENT_TRANSPORT_RESET),
	 * a driver that starts later reads it from the config space. */
	if (s.next_port < EPHEMERAL_MIN || s.reserved) {
		snprintf(err, errlen, "vsock state holds values no vsock device has");
		return -EINVAL;
	}
	/* Host ports go on from the saved one, so that a new stream cannot
	 * take the address of an old one the guest has not dropped yet. */
	v->next_port = s.next_port;
	/* A driver that was running has streams we no longer have. */
	v->reset_owed = virtio_running(d);
	if (v->reset_owed)
		virtio_kick_async(d, EVQ);
	return 0;
}

static int vsock_start(struct virtio_dev *d)
{
	struct virtio_vsock *v = to_vsock(d);
	return ioloop_add(d->loop, v->listen_fd, EPOLLIN, on_accept, v);
}

static void vsock_destroy(struct virtio_dev *d)
{
	struct virtio_vsock *v = to_vsock(d);
	for (int i = 0; i < MAX_CONNS; i++)
		if (v->conns[i].state != CONN_FREE) {
			close(v->conns[i].fd);
			free(v->conns[i].pend);
		}
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	free(v->path);
	free(v);
}

static void vsock_stats(struct virtio_dev *d, int fd)
{
	struct virtio_vsock *v = to_vsock(d);
	dprintf(fd,
		"wisp: virtio-vsock cid %" PRIu64 ": streams %" PRIu64 " to guest %" PRIu64
		" bytes, from guest %" PRIu64 " bytes, resets %" PRIu64
		", transport resets %" PRIu64 "%s\n",
		v->cid, v->conns_opened, v->bytes_to_guest, v->bytes_from_guest, v->resets,
		v->transport_resets, v->reset_owed ? " (one owed)" : "");
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.snapshot = true,
	.save_state = vsock_save_state,
	.restore_state = vsock_restore_state,
	.device_id = VIRTIO_ID_VSOCK,
	.nr_queues = 3,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.start = vsock_start,
	.destroy = vsock_destroy,
	.stats = vsock_stats,
};

struct virtio_dev *virtio_vsock_create(const struct virtio_vsock_opts *o, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	/* Room for "_4294967295" too: guest-initiated streams use PATH_PORT. */
	if (strlen(o->uds_path) + 11 >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "vsock socket '%s': path longer than %zu bytes", o->uds_path,
			 sizeof(a.sun_path) - 12);
		return NULL;
	}
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v || !(v->path = strdup(o->uds_path)) ||
	    virtio_dev_init(&v->dev, &vsock_ops, 0, sizeof(struct virtio_vsock_config))) {
		if (v)
			free(v->path);
		free(v);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->cid = o->cid;
	v->next_port = EPHEMERAL_MIN;
	strcpy(a.sun_path, o->uds_path);
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* 0600 whatever the umask, set before listen so no one connects
	 * earlier: only the VM's owner may open streams to the guest. */
	if (v->listen_fd < 0 || bind(v->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(o->uds_path, 0600) < 0 || listen(v->listen_fd, 16) < 0) {
		snprintf(err, errlen, "vsock socket '%s': %s%s", o->uds_path, strerror(errno),
			 errno == EADDRINUSE ? " (remove the stale file if no VM uses it)" : "");
		if (v->listen_fd >= 0)
			close(v->listen_fd);
		free(v->path);
		free(v);
		return NULL;
	}
	struct virtio_vsock_config cfg = {.guest_cid = o->cid};
	memcpy(v->dev.config, &cfg, sizeof(cfg));
	/* A packet is a header plus at most MAX_PAYLOAD: anything larger is not
	 * one, and is refused by the walker. */
	v->dev.vq[TXQ].max_bytes = 4 * (HDR + MAX_PAYLOAD);
	return &v->dev;
}

void virtio_vsock_set_cid(struct virtio_dev *d, uint32_t cid)
{
	struct virtio_vsock *v = to_vsock(d);
	struct virtio_vsock_config cfg = {.guest_cid = cid};
	v->cid = cid;
	memcpy(v->dev.config, &cfg, sizeof(cfg));
}
