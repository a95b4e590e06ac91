/* virtio-blk (device ID 2) on a raw image file: read, write, flush, get-id.
 *
 * Requests go to io_uring (liburing): the I/O thread that serves every
 * device of the VM never blocks on the disk, several requests are in flight
 * at once, and completions come back through an eventfd in the same loop.
 * Where io_uring is unavailable (old kernel, seccomp in a container) or
 * turned off (WISP_BLK_SYNC=1), the same requests are served synchronously.
 *
 * A request is a header (readable), data, and a status byte (the last
 * writable byte). Framing is free (VIRTIO_F_ANY_LAYOUT is implied in 1.x), so
 * the parser works on byte offsets, never on descriptor boundaries. A
 * request that is wrong but well-formed enough to carry a status byte gets
 * VIRTIO_BLK_S_IOERR or _UNSUPP; one without a status byte, or reusing a
 * chain still in flight, puts the device in NEEDS_RESET. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "util/util.h"
#include "vmm/ioloop.h"

#define SECTOR 512u

/* One request in flight (io_uring), indexed by its chain's head. */
struct blk_req {
	bool busy;
	uint8_t type;
	uint8_t *status; /* the status byte in guest RAM */
	uint32_t len;	 /* bytes the request writes into the chain */
	uint64_t expect; /* result that means success */
	struct iovec *iov;
};

struct virtio_blk {
	struct virtio_dev dev;
	int fd;
	bool ro;
	uint64_t sectors;
	char id[VIRTIO_BLK_ID_BYTES];
	bool uring; /* io_uring in use */
	struct io_uring ring;
	int ring_efd;
	uint32_t inflight;
	struct blk_req req[VIRTQ_MAX_SIZE];
	struct virtq_chain chain;
	/* Rate limiting: a request the limiter holds back goes back to the
	 * ring, and the queue is served again when the timer fires. */
	struct ratelimit rl;
	struct ioloop_timer timer;
	bool throttled;
	uint64_t reads, writes, flushes, ids, bytes_read, bytes_written, errors;
};

static struct virtio_blk *to_blk(struct virtio_dev *d)
{
	return (struct virtio_blk *)d;
}

/* Host pointer to the last writable byte of the chain (the status). */
static uint8_t *status_byte(const struct virtq_chain *c)
{
	for (int i = c->nr_r + c->nr_w - 1; i >= c->nr_r; i--)
		if (c->iov[i].iov_len)
			return (uint8_t *)c->iov[i].iov_base + c->iov[i].iov_len - 1;
	return NULL;
}

static void complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s, uint32_t len)
{
	*status = s;
	if (s != VIRTIO_BLK_S_OK)
		b->errors++;
	virtq_push(&b->dev.vq[0], head, len);
}

/* Serve synchronously; returns the status. */
static uint8_t sync_io(struct virtio_blk *b, uint8_t type, struct iovec *iov, int n, uint64_t off,
		       uint64_t len)
{
	if (type == VIRTIO_BLK_T_FLUSH)
		return fdatasync(b->fd) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	uint64_t done = 0;
	while (done < len) {
		ssize_t k = type == VIRTIO_BLK_T_IN ? preadv(b->fd, iov, n, (off_t)(off + done))
						    : pwritev(b->fd, iov, n, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return VIRTIO_BLK_S_IOERR;
		done += (uint64_t)k;
		/* Advance the iovecs past what was transferred. */
		size_t skip = (size_t)k;
		while (n && skip >= iov->iov_len) {
			skip -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + skip;
			iov->iov_len -= skip;
		}
	}
	return VIRTIO_BLK_S_OK;
}

/* Queue the request on io_uring; false if it must be served synchronously. */
static bool submit(struct virtio_blk *b, uint16_t head, uint8_t type, uint8_t *status,
		   const struct iovec *iov, int n, uint64_t off, uint64_t len, uint32_t used)
{
	if (!b->uring)
		return false;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe)
		return false;
	struct blk_req *r = &b->req[head];
	r->iov = NULL;
	if (n) {
		r->iov = malloc((size_t)n * sizeof(*iov));
		if (!r->iov) {
			io_uring_prep_nop(sqe); /* an sqe once taken must be used */
			io_uring_sqe_set_data64(sqe, UINT64_MAX);
			return false;
		}
		memcpy(r->iov, iov, (size_t)n * sizeof(*iov));
	}
	if (type == VIRTIO_BLK_T_IN)
		io_uring_prep_readv(sqe, b->fd, r->iov, (unsigned)n, off);
	else if (type == VIRTIO_BLK_T_OUT)
		io_uring_prep_writev(sqe, b->fd, r->iov, (unsigned)n, off);
	else
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, head);
	r->busy = true;
	r->type = type;
	r->status = status;
	r->len = used;
	r->expect = len;
	b->inflight++;
	return true;
}

/* Parse and start one request; false if the device now needs a reset. */
static bool handle(struct virtio_blk *b, struct virtq_chain *c)
{
	struct virtio_dev *d = &b->dev;
	uint8_t *status = status_byte(c);
	if (!status) {
		virtio_needs_reset(d, "blk request without a writable status byte");
		return false;
	}
	if (b->req[c->head].busy) {
		virtio_needs_reset(d, "blk request reuses a chain still in flight");
		return false;
	}
	struct virtio_blk_outhdr h;
	if (virtq_read(c, 0, &h, sizeof(h)) < sizeof(h)) {
		virtio_guest_error(d, "blk request header not device-readable");
		complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		return true;
	}
	uint64_t in_len = c->w_len - 1; /* writable bytes before the status */
	uint64_t out_len = c->r_len - sizeof(h);
	struct iovec iov[VIRTQ_MAX_CHAIN];
	int n = 0;
	uint64_t len = 0;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = h.type == VIRTIO_BLK_T_IN;
		len = in ? in_len : out_len;
		const char *bad = NULL;
		if (in ? out_len : in_len)
			bad = "blk data buffer in the wrong direction";
		else if (len % SECTOR)
			bad = "blk data length not a multiple of 512";
		else if (h.sector > b->sectors || len / SECTOR > b->sectors - h.sector)
			bad = "blk request beyond the end of the disk";
		else if (!in && b->ro)
			bad = "blk write to a read-only disk";
		if (bad) {
			virtio_guest_error(d, bad);
			complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
			return true;
		}
		n = virtq_slice(c, in, in ? 0 : sizeof(h), len, iov);
		if (in) {
			b->reads++;
			b->bytes_read += len;
		} else {
			b->writes++;
			b->bytes_written += len;
		}
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		b->flushes++;
		if (b->ro) {
			complete(b, c->head, status, VIRTIO_BLK_S_OK, 1);
			return true;
		}
		break;
	case VIRTIO_BLK_T_GET_ID: {
		b->ids++;
		size_t k =
			virtq_write(c, 0, b->id, in_len < sizeof(b->id) ? in_len : sizeof(b->id));
		complete(b, c->head, status, VIRTIO_BLK_S_OK, (uint32_t)k + 1);
		return true;
	}
	default:
		complete(b, c->head, status, VIRTIO_BLK_S_UNSUPP, 1);
		return true;
	}
	uint32_t used = (h.type == VIRTIO_BLK_T_IN ? (uint32_t)len : 0) + 1;
	uint64_t off = h.sector * SECTOR;
	if (!submit(b, c->head, (uint8_t)h.type, status, iov, n, off, len, used))
		complete(b, c->head, status, sync_io(b, (uint8_t)h.type, iov, n, off, len), used);
	return true;
}

static void reap(struct virtio_blk *b, bool discard);

/* What a request costs the limiter: its data bytes (reads and writes) and
 * one operation; a malformed one is charged nothing more than the op. */
static uint64_t cost(const struct virtq_chain *c)
{
	struct virtio_blk_outhdr h;
	if (virtq_read(c, 0, &h, sizeof(h)) < sizeof(h))
		return 0;
	if (h.type == VIRTIO_BLK_T_IN && c->w_len)
		return c->w_len - 1;
	if (h.type == VIRTIO_BLK_T_OUT)
		return c->r_len - sizeof(h);
	return 0;
}

/* May the chain just popped go? If not, it goes back to the ring and the
 * timer will serve the queue again: nothing sleeps on the I/O thread. */
static bool admit(struct virtio_blk *b, struct virtq *q)
{
	if (!ratelimit_on(&b->rl))
		return true;
	uint64_t w = ratelimit_admit(&b->rl, cost(&b->chain), util_now_ns());
	if (!w)
		return true;
	virtq_unpop(q);
	b->throttled = true;
	ioloop_timer_arm(&b->timer, w);
	return false;
}

static void blk_notify(struct virtio_dev *d, int qi)
{
	struct virtio_blk *b = to_blk(d);
	struct virtq *q = &d->vq[qi];
	if (b->throttled)
		return; /* the timer serves the queue when the limiter allows */
	for (;;) {
		int n = virtio_pop(d, qi, &b->chain);
		if (n == 0 && virtq_enable_notify(q))
			continue;
		if (n <= 0 || !admit(b, q) || !handle(b, &b->chain))
			break;
	}
	if (b->uring) {
		io_uring_submit(&b->ring);
		/* Reads that hit the page cache complete inside the submit: answer
		 * them now rather than after another trip through the loop. */
		reap(b, false);
	}
	virtio_signal_used(d, q);
}

/* Reap finished io_uring requests; with `discard` (reset) only free them. */
static void reap(struct virtio_blk *b, bool discard)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		uint64_t head = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		if (head >= VIRTQ_MAX_SIZE || !b->req[head].busy)
			continue;
		struct blk_req *r = &b->req[head];
		r->busy = false;
		free(r->iov);
		r->iov = NULL;
		b->inflight--;
		if (!discard)
			complete(b, (uint16_t)head, r->status,
				 res >= 0 && (uint64_t)res == r->expect ? VIRTIO_BLK_S_OK
									: VIRTIO_BLK_S_IOERR,
				 r->len);
	}
}

static void on_completion(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	uint64_t n;
	(void)events;
	if (read(b->ring_efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&b->dev.lock);
	reap(b, false);
	virtio_signal_used(&b->dev, &b->dev.vq[0]);
	pthread_mutex_unlock(&b->dev.lock);
}

static void on_timer(void *opaque)
{
	struct virtio_blk *b = opaque;
	struct virtio_dev *d = &b->dev;
	pthread_mutex_lock(&d->lock);
	b->throttled = false;
	if (virtio_running(d) && d->vq[0].s.ready)
		blk_notify(d, 0);
	pthread_mutex_unlock(&d->lock);
}

/* A reset must not leave the disk writing into guest RAM afterwards: wait
 * for everything in flight and drop the results. */
static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	b->throttled = false;
	ioloop_timer_arm(&b->timer, 0);
	while (b->uring && b->inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&b->ring, &cqe);
		if (r < 0 && r != -EINTR)
			break;
		reap(b, true);
	}
}

/* Before a snapshot: finish every request in flight (their data lands in
 * guest memory and their chains go back to the driver), so that the queue
 * state saved is all there is. */
static int blk_prepare_save(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	while (b->uring && b->inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&b->ring, &cqe);
		if (r < 0 && r != -EINTR)
			return r;
		reap(b, false);
	}
	virtio_signal_used(d, &d->vq[0]);
	return 0;
}

static int blk_start(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	int r = 0;
	if (ratelimit_on(&b->rl))
		r = ioloop_timer_init(d->loop, &b->timer, on_timer, b);
	if (!r && b->uring)
		r = ioloop_add(d->loop, b->ring_efd, EPOLLIN, on_completion, b);
	return r;
}

static void blk_destroy(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	if (b->uring) {
		blk_reset(d);
		io_uring_queue_exit(&b->ring);
		close(b->ring_efd);
	}
	if (b->fd >= 0)
		close(b->fd);
	ioloop_timer_close(&b->timer);
	free(b);
}

static void blk_stats(struct virtio_dev *d, int fd)
{
	struct virtio_blk *b = to_blk(d);
	dprintf(fd,
		"wisp: virtio-blk: %s, reads %" PRIu64 " (%" PRIu64 " bytes) writes %" PRIu64
		" (%" PRIu64 " bytes) flushes %" PRIu64 " get-id %" PRIu64 " errors %" PRIu64 "\n",
		b->uring ? "io_uring" : "synchronous", b->reads, b->bytes_read, b->writes,
		b->bytes_written, b->flushes, b->ids, b->errors);
	if (ratelimit_on(&b->rl))
		dprintf(fd, "wisp: virtio-blk: rate limited: held back %" PRIu64 " times\n",
			b->rl.throttled);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.notify = blk_notify,
	.reset = blk_reset,
	.snapshot = true,
	.prepare_save = blk_prepare_save,
	.start = blk_start,
	.destroy = blk_destroy,
	.stats = blk_stats,
};

static void setup_uring(struct virtio_blk *b, bool off)
{
	const char *env = getenv("WISP_BLK_SYNC");
	if (off || (env && *env && strcmp(env, "0")))
		return;
	if (io_uring_queue_init(VIRTQ_MAX_SIZE, &b->ring, 0) < 0)
		return;
	b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
		if (b->ring_efd >= 0)
			close(b->ring_efd);
		io_uring_queue_exit(&b->ring);
		return;
	}
	b->uring = true;
}

struct virtio_dev *virtio_blk_create(const struct virtio_blk_opts *o, char *err, size_t errlen)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->timer.fd = -1;
	ratelimit_init(&b->rl, o->limit, util_now_ns());
	b->fd = open(o->path, (o->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	struct stat st;
	const char *why = NULL;
	if (b->fd < 0)
		why = strerror(errno);
	else if (fstat(b->fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		why = "not a regular file or block device";
	else if (flock(b->fd, (o->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		why = errno == EWOULDBLOCK ? "in use by another VM (the file is locked)"
					   : strerror(errno);
	off_t size = why ? 0 : lseek(b->fd, 0, SEEK_END);
	if (!why && size < (off_t)SECTOR)
		why = size < 0 ? strerror(errno) : "smaller than one 512-byte sector";
	if (why) {
		snprintf(err, errlen, "disk '%s': %s", o->path, why);
		if (b->fd >= 0)
			close(b->fd);
		free(b);
		return NULL;
	}
	b->ro = o->ro;
	b->sectors = (uint64_t)size / SECTOR;
	const char *id = o->id;
	if (!id) {
		id = strrchr(o->path, '/');
		id = id ? id + 1 : o->path;
	}
	/* Zero-padded, and not NUL-terminated when 20 bytes long (as the spec says). */
	size_t idl = strlen(id);
	memcpy(b->id, id, idl < sizeof(b->id) ? idl : sizeof(b->id));
	uint64_t f = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		     1ull << VIRTIO_BLK_F_FLUSH | (o->ro ? 1ull << VIRTIO_BLK_F_RO : 0);
	if (virtio_dev_init(&b->dev, &blk_ops, f,
			    offsetof(struct virtio_blk_config, physical_block_exp))) {
		close(b->fd);
		free(b);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct virtio_blk_config cfg = {
		.capacity = b->sectors,
		.seg_max = VIRTQ_MAX_CHAIN - 2,
		.blk_size = SECTOR,
	};
	memcpy(b->dev.config, &cfg, b->dev.config_len);
	setup_uring(b, o->no_uring);
	return &b->dev;
}
