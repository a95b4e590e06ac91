/* Live migration over TCP (docs/migration.md): pre-copy rounds driven by
 * KVM's dirty log, then stop-and-copy, then the target resumes and says
 * so. The source never stops running until the target has said "resumed";
 * every failure before that turns dirty logging off and unpauses it.
 *
 * Stream (little-endian), source -> target:
 *   hello {magic, version, nr_vcpus, mem_size}
 *   pages {type, count, off, hash} + count * 4 KiB   (a run of pages)
 *   round {type, round}
 *   state {type, len, hash} + len bytes  (the snapshot state section)
 * target -> source: ack {magic, version, status, why} after the hello, and
 *   resumed {status, why} once the VM runs there (or could not). */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

#define RUN_PAGES     256u /* pages per message: 1 MiB */
#define MAX_ROUNDS    30
#define FINAL_PAGES   64u /* stop and copy once a round leaves no more dirty pages than this */
#define STALL_ROUNDS  5	  /* or when the dirty set stopped shrinking for this many rounds */
#define IO_TIMEOUT_MS 10000

enum mig_msg { MIG_PAGES = 1, MIG_ROUND, MIG_STATE };

struct mig_ack {
	uint64_t magic;
	uint32_t version;
	int32_t status; /* 0, or -errno */
	char why[200];
};

struct mig_pages {
	uint32_t type; /* MIG_PAGES */
	uint32_t count;
	uint64_t off; /* memfd offset of the first page */
	uint64_t hash;
};

struct mig_round {
	uint32_t type; /* MIG_ROUND */
	uint32_t round;
};

struct mig_state {
	uint32_t type; /* MIG_STATE */
	uint32_t pad;
	uint64_t len;
	uint64_t hash;
};

struct mig_done {
	int32_t status;
	uint32_t pad;
	char why[200];
};

/* --- stream helpers ------------------------------------------------------------ */

/* Wait until c->fd is ready for `events`: until c's deadline if it has
 * one, else at most IO_TIMEOUT_MS (a peer that stops reading or writing
 * must not hang the source for ever). While waiting, c->watch_fd readable
 * calls c->watch, which may cancel the wait (a destroy). */
static int wait_fd(struct mig_conn *c, short events)
{
	for (;;) {
		int timeout = IO_TIMEOUT_MS;
		if (c->deadline_ns) {
			uint64_t now = util_now_ns();
			if (now >= c->deadline_ns)
				return -ETIMEDOUT;
			uint64_t left = (c->deadline_ns - now + 999999) / 1000000;
			timeout = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		struct pollfd p[2] = {{.fd = c->fd, .events = events},
				      {.fd = c->watch_fd, .events = POLLIN}};
		int r = poll(p, c->watch_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && c->watch_fd >= 0 && p[1].revents && c->watch && c->watch(c->opaque))
			return -ECANCELED;
		if (r > 0 && p[0].revents)
			return 0;
		if (r == 0 && !c->deadline_ns)
			return -ETIMEDOUT;
	}
}

static int send_all(struct mig_conn *c, struct iovec *iov, int n)
{
	if (c->fd < 0) /* a stream in memory (the fuzzer): answers go nowhere */
		return 0;
	while (n > 0) {
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0 && (errno == EINTR))
			continue;
		if (w < 0 && errno == EAGAIN) {
			int r = wait_fd(c, POLLOUT);
			if (r)
				return r;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int send_buf(struct mig_conn *c, const void *p, size_t len)
{
	struct iovec iov = {(void *)p, len};
	return send_all(c, &iov, 1);
}

static int recv_all(struct mig_conn *c, void *buf, size_t len)
{
	if (c->fd < 0) {
		if (len > c->len)
			return -ECONNRESET;
		memcpy(buf, c->buf, len);
		c->buf += len;
		c->len -= len;
		return 0;
	}
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(c->fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int r = wait_fd(c, POLLIN);
			if (r)
				return r;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void tune(int fd)
{
	int one = 1, buf = 4 << 20;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* --- addresses ------------------------------------------------------------------ */

int mig_parse_addr(const char *s, struct sockaddr_storage *ss, unsigned *len, char *err,
		   size_t errlen)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	memset(ss, 0, sizeof(*ss));
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host)) {
		snprintf(err, errlen, "'%s': give ADDRESS:PORT", s);
		return -EINVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *h = host;
	size_t hl = strlen(h);
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535) {
		snprintf(err, errlen, "'%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		snprintf(err, errlen, "'%s': '%s' is not an IP address", s, h);
		return -EINVAL;
	}
	return 0;
}

/* --- the transport's channel (see struct mig_chan) ------------------------------ */

int mig_chan_send(int chan, uint32_t kind, int status, const char *why, int fd)
{
	struct mig_chan m = {.kind = kind, .status = status};
	snprintf(m.why, sizeof(m.why), "%s", why ? why : "");
	return util_send_fd(chan, &m, sizeof(m), fd);
}

int mig_chan_recv(int chan, struct mig_chan *m, int *fd)
{
	ssize_t n = util_recv_fd(chan, m, sizeof(*m), fd, MSG_DONTWAIT);
	if (n == -EMSGSIZE)
		return -EBADMSG;
	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(*m)) { /* 0: the other end has gone */
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return n ? -EBADMSG : -ECONNRESET;
	}
	m->why[sizeof(m->why) - 1] = 0;
	if (*fd >= 0) {
		if (m->kind != MIG_CHAN_PEER) {
			close(*fd);
			*fd = -1;
		} else {
			tune(*fd);
		}
	}
	if (m->kind == MIG_CHAN_PEER && *fd < 0)
		return -EBADMSG;
	return 0;
}

/* --- dirty logging -------------------------------------------------------------- */

struct dirty {
	struct vm *vm;
	bool manual; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 in use */
	bool on;
	uint64_t *bitmap[WISP_MAX_MEM_REGIONS];
};

static int set_logging(struct vm *vm, bool on)
{
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct mem_region *m = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = m->gpa,
			.memory_size = m->size,
			.userspace_addr = (uint64_t)(uintptr_t)m->host,
		};
		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -errno;
	}
	return 0;
}

static int dirty_start(struct dirty *d, struct vm *vm)
{
	memset(d, 0, sizeof(*d));
	d->vm = vm;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t pages = vm->mem.regions[i].size / 4096;
		d->bitmap[i] = calloc((pages + 63) / 64, 8);
		if (!d->bitmap[i])
			return -ENOMEM;
	}
	/* With manual protection, GET only reads the bitmap and CLEAR
	 * re-protects the pages we are about to send, right before we copy
	 * them; enabled once per VM (a second enable is harmless). */
	if (kvm_check_cap(vm->kvm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
	    KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) {
		struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
					     .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}};
		d->manual = ioctl(vm->fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	int r = set_logging(vm, true);
	if (!r)
		d->on = true;
	return r;
}

static void dirty_stop(struct dirty *d)
{
	if (d->on)
		set_logging(d->vm, false);
	d->on = false;
	for (int i = 0; i < WISP_MAX_MEM_REGIONS; i++) {
		free(d->bitmap[i]);
		d->bitmap[i] = NULL;
	}
}

/* Fetch (and re-arm) the dirty bitmaps; returns the dirty page count. */
static int64_t dirty_collect(struct dirty *d)
{
	struct vm *vm = d->vm;
	int64_t total = 0;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t pages = vm->mem.regions[i].size / 4096;
		struct kvm_dirty_log log = {.slot = (uint32_t)i, .dirty_bitmap = d->bitmap[i]};
		if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return -errno;
		uint64_t n = 0;
		for (uint64_t w = 0; w < (pages + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(d->bitmap[i][w]);
		if (d->manual && n) {
			struct kvm_clear_dirty_log c = {.slot = (uint32_t)i,
							.num_pages = (uint32_t)pages,
							.first_page = 0,
							.dirty_bitmap = d->bitmap[i]};
			if (ioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
				return -errno;
		}
		total += (int64_t)n;
	}
	return total;
}

/* --- source ------------------------------------------------------------------------ */

struct sender {
	struct mig_conn c;
	struct vm *vm;
	uint8_t *bounce; /* pages are copied before they are hashed and sent */
	uint64_t bytes;
};

/* Send the run of `count` pages at memfd offset off. The copy matters: the
 * guest may write the pages while they are sent (pre-copy), and the hash
 * must describe the bytes that go out (the dirty log resends them later). */
static int send_run(struct sender *s, uint64_t off, uint32_t count)
{
	size_t len = (size_t)count * 4096;
	memcpy(s->bounce, s->vm->mem.base + off, len);
	struct mig_pages h = {
		.type = MIG_PAGES, .count = count, .off = off, .hash = snap_hash(s->bounce, len)};
	struct iovec iov[2] = {{&h, sizeof(h)}, {s->bounce, len}};
	s->bytes += sizeof(h) + len;
	return send_all(&s->c, iov, 2);
}

static int send_extent(void *opaque, uint64_t off, uint64_t len)
{
	struct sender *s = opaque;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = (len - done) / 4096;
		if (n > RUN_PAGES)
			n = RUN_PAGES;
		int r = send_run(s, off + done, (uint32_t)n);
		if (r)
			return r;
		done += n * 4096;
	}
	return 0;
}

/* Send every page set in the dirty bitmaps, in runs. */
static int send_dirty(struct sender *s, struct dirty *d)
{
	struct vm *vm = s->vm;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		uint64_t pages = vm->mem.regions[i].size / 4096;
		uint64_t base = vm->mem.regions[i].fd_offset;
		const uint64_t *bm = d->bitmap[i];
		for (uint64_t p = 0; p < pages;) {
			if (!(bm[p / 64] >> (p % 64) & 1)) {
				if (!bm[p / 64] && p % 64 == 0)
					p += 64;
				else
					p++;
				continue;
			}
			uint64_t q = p;
			while (q < pages && q - p < RUN_PAGES && (bm[q / 64] >> (q % 64) & 1))
				q++;
			int r = send_run(s, base + p * 4096, (uint32_t)(q - p));
			if (r)
				return r;
			p = q;
		}
	}
	return 0;
}

static int read_done(struct mig_conn *c, char *err, size_t errlen)
{
	struct mig_done done;
	int r = recv_all(c, &done, sizeof(done));
	if (r) {
		snprintf(err, errlen, "the target did not confirm the resume: %s", strerror(-r));
		return r;
	}
	if (done.status) {
		done.why[sizeof(done.why) - 1] = 0;
		snprintf(err, errlen, "the target could not resume the VM: %s", done.why);
		return done.status < 0 ? done.status : -EIO;
	}
	return 0;
}

/* Wait (at most CHAN_TIMEOUT_MS) for the transport to say whether it
 * reached and authenticated the target; the stream's fd in *fd. */
#define CHAN_TIMEOUT_MS 60000
static int wait_transport(int chan, const char *target, int *fd, char *err, size_t errlen)
{
	struct pollfd p = {.fd = chan, .events = POLLIN};
	uint64_t end = util_now_ns() + CHAN_TIMEOUT_MS * 1000000ull;
	for (;;) {
		uint64_t now = util_now_ns();
		if (now >= end) {
			snprintf(err, errlen, "%s: no connection within %d s", target,
				 CHAN_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		int n = poll(&p, 1, (int)((end - now) / 1000000 + 1));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		struct mig_chan m;
		int r = mig_chan_recv(chan, &m, fd);
		if (r == -EAGAIN)
			continue;
		if (r) {
			snprintf(err, errlen, "%s: the migration transport ended: %s", target,
				 strerror(-r));
			return r;
		}
		if (m.kind == MIG_CHAN_PEER)
			return 0;
		if (m.kind == MIG_CHAN_FAILED) {
			snprintf(err, errlen, "%s", m.why);
			return m.status < 0 ? m.status : -EIO;
		}
	}
}

/* One outgoing migration: what the steps of mig_send share. */
struct migration {
	struct sender s;
	struct dirty d;
	struct vm *vm;
	const char *target;
	void (*progress)(void *opaque, const struct mig_progress *p);
	void *opaque;
	uint64_t t0;	/* when mig_send began */
	uint64_t tp;	/* when the VM was paused */
	uint64_t b0;	/* s.bytes when the round being reported began */
	uint32_t round; /* the last pre-copy round */
	bool paused;
};

/* Say that the connection to the target broke; r passes through. */
static int conn_lost(const struct migration *m, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "connection to %s lost: %s", m->target, strerror(-r));
	return r;
}

/* Say that the dirty log could not be read; r passes through. */
static int dirty_log_failed(int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "reading the dirty log: %s", strerror(-r));
	return r;
}

/* Hello and ack: the target speaks our protocol and takes this VM. */
static int send_hello(struct migration *m, char *err, size_t errlen)
{
	struct mig_hello h = {.magic = MIG_MAGIC,
			      .version = MIG_VERSION,
			      .nr_vcpus = (uint32_t)m->vm->nr_vcpus,
			      .mem_size = m->vm->mem.size};
	struct mig_ack ack;
	int r;
	if ((r = send_buf(&m->s.c, &h, sizeof(h))) || (r = recv_all(&m->s.c, &ack, sizeof(ack)))) {
		snprintf(err, errlen,
			 "%s: no answer to the migration hello: %s (does the target take our key "
			 "or certificate, and the same transport?)",
			 m->target, strerror(-r));
		return r;
	}
	ack.why[sizeof(ack.why) - 1] = 0;
	if (ack.magic != MIG_MAGIC) {
		snprintf(err, errlen, "%s does not speak Wisp's migration protocol", m->target);
		return -EPROTO;
	}
	if (ack.status) {
		snprintf(err, errlen, "%s refused the VM: %s", m->target, ack.why);
		return ack.status < 0 ? ack.status : -EPROTO;
	}
	return 0;
}

/* Tell the caller how the pre-copy round just ended went. */
static void report_round(const struct migration *m, int64_t dirty, uint64_t round_start,
			 uint64_t now)
{
	struct mig_progress p = {
		.round = m->round,
		.pages = (m->s.bytes - m->b0) / (4096 + sizeof(struct mig_pages)),
		.bytes = m->s.bytes,
		.dirty_rate = now > round_start
				      ? (uint64_t)dirty * 4096 * 1000000000ull / (now - round_start)
				      : 0,
		.elapsed_ns = now - m->t0,
	};
	if (m->progress)
		m->progress(m->opaque, &p);
}

/* Pre-copy. Round 1: everything the guest has populated. Later rounds: what
 * it dirtied meanwhile, until that is small or stops shrinking. */
static int send_rounds(struct migration *m, char *err, size_t errlen)
{
	uint64_t round_start = util_now_ns(), prev = UINT64_MAX;
	int stalls = 0, r;
	m->round = 1;
	m->b0 = m->s.bytes;
	if ((r = gmem_extents(&m->vm->mem, send_extent, &m->s)))
		return conn_lost(m, r, err, errlen);
	for (;;) {
		struct mig_round rm = {.type = MIG_ROUND, .round = m->round};
		if ((r = send_buf(&m->s.c, &rm, sizeof(rm))))
			return conn_lost(m, r, err, errlen);
		int64_t dirty = dirty_collect(&m->d);
		if (dirty < 0)
			return dirty_log_failed((int)dirty, err, errlen);
		uint64_t now = util_now_ns();
		report_round(m, dirty, round_start, now);
		bool last_round = (uint64_t)dirty <= FINAL_PAGES || m->round >= MAX_ROUNDS;
		stalls = (uint64_t)dirty >= prev ? stalls + 1 : 0;
		if (last_round || stalls >= STALL_ROUNDS)
			return 0;
		prev = (uint64_t)dirty;
		m->round++;
		round_start = now;
		m->b0 = m->s.bytes;
		if ((r = send_dirty(&m->s, &m->d)))
			return conn_lost(m, r, err, errlen);
	}
}

/* The target acknowledges each round once it has taken in everything
 * before it: wait for that before pausing, or the downtime would
 * include draining the socket buffers (megabytes of pages). */
static int wait_rounds_acked(struct migration *m, char *err, size_t errlen)
{
	for (uint32_t acked = 0; acked != m->round;) {
		int r = recv_all(&m->s.c, &acked, sizeof(acked));
		if (r)
			return conn_lost(m, r, err, errlen);
	}
	return 0;
}

/* Stop and copy: pause the VM, then send the last dirty pages (those of
 * the bitmap just read, then whatever was dirtied until the vCPUs stopped). */
static int stop_and_copy(struct migration *m, struct vcpu *self, char *err, size_t errlen)
{
	int r;
	m->tp = util_now_ns();
	if ((r = vm_pause(m->vm, self))) {
		snprintf(err, errlen, "the VM stopped during the migration");
		return r;
	}
	m->paused = true;
	if (self)
		vcpu_complete_io(self);
	snap_quiesce(m->vm, true);
	m->b0 = m->s.bytes;
	if ((r = send_dirty(&m->s, &m->d)))
		return conn_lost(m, r, err, errlen);
	int64_t last = dirty_collect(&m->d);
	if (last < 0)
		return dirty_log_failed((int)last, err, errlen);
	if ((r = send_dirty(&m->s, &m->d)))
		return conn_lost(m, r, err, errlen);
	return 0;
}

/* Send the paused VM's state section, with an empty memory map: its pages
 * have all gone ahead of it. */
static int send_state(struct migration *m, const char *config, size_t config_len, char *err,
		      size_t errlen)
{
	struct wbuf st = {0};
	int r = snap_save_state(m->vm, config, config_len, &st, err, errlen);
	if (r)
		goto out;
	snap_put_rec(&st, SNAP_REC_MEMMAP, 1, 0);
	snap_put_rec(&st, SNAP_REC_END, 1, 0);
	if ((r = wbuf_error(&st))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	struct mig_state sm = {.type = MIG_STATE, .len = st.len, .hash = snap_hash(st.p, st.len)};
	struct iovec iov[2] = {{&sm, sizeof(sm)}, {st.p, st.len}};
	if ((r = send_all(&m->s.c, iov, 2)))
		conn_lost(m, r, err, errlen);
out:
	wbuf_free(&st);
	return r;
}

/* Wait for the target to say it resumed the VM; then fill res and report
 * the final round. */
static int confirm_resumed(struct migration *m, struct mig_result *res, char *err, size_t errlen)
{
	int r = read_done(&m->s.c, err, errlen);
	if (r)
		return r;
	uint64_t end = util_now_ns();
	res->rounds = m->round + 1;
	res->bytes = m->s.bytes;
	res->total_ns = end - m->t0;
	res->downtime_ns = end - m->tp;
	if (m->progress) {
		struct mig_progress p = {.round = m->round + 1,
					 .pages = (m->s.bytes - m->b0) /
						  (4096 + sizeof(struct mig_pages)),
					 .bytes = m->s.bytes,
					 .elapsed_ns = end - m->t0,
					 .final = true};
		m->progress(m->opaque, &p);
	}
	return 0;
}

int mig_send(struct vm *vm, struct vcpu *self, int chan, const char *target, const char *config,
	     size_t config_len, void (*progress)(void *opaque, const struct mig_progress *p),
	     void *opaque, struct mig_result *res, char *err, size_t errlen)
{
	struct migration m = {.s = {.c = {.fd = -1, .watch_fd = -1}, .vm = vm},
			      .vm = vm,
			      .target = target,
			      .progress = progress,
			      .opaque = opaque,
			      .t0 = util_now_ns()};
	memset(res, 0, sizeof(*res));
	int r;
	m.s.bounce = malloc(RUN_PAGES * 4096);
	if (!m.s.bounce) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Nothing of the guest goes out before the transport has checked the
	 * target's identity (or was told by name to trust anyone). */
	if ((r = wait_transport(chan, target, &m.s.c.fd, err, errlen)) ||
	    (r = send_hello(&m, err, errlen)))
		goto out;
	if ((r = dirty_start(&m.d, vm))) {
		snprintf(err, errlen, "cannot turn on dirty logging: %s", strerror(-r));
		goto out;
	}
	if ((r = send_rounds(&m, err, errlen)) || (r = wait_rounds_acked(&m, err, errlen)) ||
	    (r = stop_and_copy(&m, self, err, errlen)) ||
	    (r = send_state(&m, config, config_len, err, errlen)))
		goto out;
	/* Once resumed, the VM runs on the target: it must never run here
	 * again. The caller stops it; the vCPUs stay parked until then. */
	r = confirm_resumed(&m, res, err, errlen);
out:
	dirty_stop(&m.d);
	if (r && m.paused) {
		snap_quiesce(vm, false);
		vm_unpause(vm);
	}
	if (m.s.c.fd >= 0)
		close(m.s.c.fd);
	free(m.s.bounce);
	return r;
}

/* --- target ----------------------------------------------------------------------- */

int mig_ack(struct mig_conn *c, int status, const char *why)
{
	struct mig_ack a = {.magic = MIG_MAGIC, .version = MIG_VERSION, .status = status};
	snprintf(a.why, sizeof(a.why), "%s", why ? why : "");
	return send_buf(c, &a, sizeof(a));
}

int mig_read_hello(struct mig_conn *c, struct mig_hello *h, char *err, size_t errlen)
{
	int r = recv_all(c, h, sizeof(*h));
	if (r)
		snprintf(err, errlen, "no migration hello from the source: %s",
			 r == -ETIMEDOUT ? "deadline reached" : strerror(-r));
	return r;
}

int mig_check_hello(const struct mig_hello *h, uint32_t nr_vcpus, uint64_t mem_size, char *why,
		    size_t whylen)
{
	if (h->magic != MIG_MAGIC) {
		snprintf(why, whylen, "not a Wisp migration stream");
		return -EPROTO;
	}
	if (h->version != MIG_VERSION) {
		snprintf(why, whylen, "protocol version %u is not supported (the target speaks %u)",
			 h->version, MIG_VERSION);
		return -EPROTO;
	}
	if (h->mem_size != mem_size) {
		snprintf(why, whylen,
			 "the VM has %llu MiB of memory, the receiver was asked for %llu MiB",
			 (unsigned long long)(h->mem_size >> 20),
			 (unsigned long long)(mem_size >> 20));
		return -EINVAL;
	}
	if (h->nr_vcpus != nr_vcpus) {
		snprintf(why, whylen, "the VM has %u vCPUs, the receiver was asked for %u",
			 h->nr_vcpus, nr_vcpus);
		return -EINVAL;
	}
	return 0;
}

int mig_rx_frames(struct mig_conn *c, uint8_t *mem, uint64_t mem_size, uint8_t **state,
		  size_t *state_len, char *err, size_t errlen)
{
	int r;
	*state = NULL;
	*state_len = 0;
	for (;;) {
		uint32_t type;
		if ((r = recv_all(c, &type, sizeof(type))))
			goto lost;
		if (type == MIG_PAGES) {
			struct mig_pages h = {.type = type};
			if ((r = recv_all(c, (uint8_t *)&h + 4, sizeof(h) - 4)))
				goto lost;
			uint64_t len = (uint64_t)h.count * 4096;
			if (!h.count || h.count > RUN_PAGES || h.off % 4096 || h.off > mem_size ||
			    len > mem_size - h.off) {
				snprintf(err, errlen, "the source sent pages outside guest memory");
				return -EPROTO;
			}
			uint8_t *dst = mem + h.off;
			if ((r = recv_all(c, dst, len)))
				goto lost;
			if (snap_hash(dst, len) != h.hash) {
				snprintf(err, errlen,
					 "pages at 0x%llx arrived corrupted (checksum)",
					 (unsigned long long)h.off);
				return -EBADMSG;
			}
		} else if (type == MIG_ROUND) {
			uint32_t round;
			if ((r = recv_all(c, &round, sizeof(round))) ||
			    (r = send_buf(c, &round, sizeof(round))))
				goto lost;
		} else if (type == MIG_STATE) {
			struct mig_state h = {.type = type};
			if ((r = recv_all(c, (uint8_t *)&h + 4, sizeof(h) - 4)))
				goto lost;
			if (h.len == 0 || h.len > SNAP_STATE_MAX) {
				snprintf(err, errlen, "the source sent a state of %llu bytes",
					 (unsigned long long)h.len);
				return -EPROTO;
			}
			uint8_t *st = malloc(h.len);
			if (!st) {
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			if ((r = recv_all(c, st, h.len))) {
				free(st);
				goto lost;
			}
			if (snap_hash(st, h.len) != h.hash) {
				free(st);
				snprintf(err, errlen, "the VM state arrived corrupted (checksum)");
				return -EBADMSG;
			}
			*state = st;
			*state_len = h.len;
			return 0;
		} else {
			snprintf(err, errlen, "the source sent an unknown message (%u)", type);
			return -EPROTO;
		}
	}
lost:
	snprintf(err, errlen, "connection to the source lost: %s",
		 r == -ETIMEDOUT && c->deadline_ns ? "deadline reached" : strerror(-r));
	return r;
}

int mig_receive(struct mig_conn *c, struct vm *vm,
		int (*before_load)(void *opaque, const struct snap_image *img, char *err,
				   size_t errlen),
		void *opaque, char *err, size_t errlen)
{
	uint8_t *state;
	size_t len;
	int r = mig_rx_frames(c, vm->mem.base, vm->mem.size, &state, &len, err, errlen);
	if (r)
		return r;
	struct snap_image img;
	r = snap_parse_state(state, len, vm->mem.size, &img, err, errlen);
	if (!r && before_load)
		r = before_load(opaque, &img, err, errlen);
	if (!r) {
		r = snap_load_state(vm, &img, err, errlen);
		snap_image_free(&img);
	}
	free(state);
	return r;
}

int mig_resumed(struct mig_conn *c, bool ok, const char *why)
{
	struct mig_done d = {.status = ok ? 0 : -EIO};
	snprintf(d.why, sizeof(d.why), "%s", ok ? "" : why);
	return send_buf(c, &d, sizeof(d));
}
