/* Output that never blocks its writer (security.h). Why: a guest flooding
 * its console into `| less` or a wedged logger used to pin the vCPU in
 * write(2) with the kick signal blocked, so --timeout, SIGTERM and destroy
 * could not end the VM; only SIGKILL could. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "security/security.h"
#include "util/util.h"

int outlet_init(struct outlet *o, int fd)
{
	*o = (struct outlet){.fd = fd};
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return 0; /* nothing, or a file: writes there never wait for a consumer */
	if (S_ISSOCK(st.st_mode)) {
		o->sock = true;
		return 0;
	}
	/* A new open file description of the same pipe or terminal: O_NONBLOCK
	 * on it leaves fd's (shared with the shell) as it was. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (nfd >= 0) {
		o->fd = nfd;
		o->own = true;
	} else {
		o->chunked = true; /* no /proc, or a FIFO without a reader now */
	}
	return 0;
}

static ssize_t try_write(struct outlet *o, struct iovec *iov, int n)
{
	if (o->sock) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		return sendmsg(o->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (o->chunked) {
		/* POLLOUT on a pipe means a free buffer slot, and a write of at
		 * most PIPE_BUF bytes then fits in it without waiting. */
		struct pollfd p = {.fd = o->fd, .events = POLLOUT};
		if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			errno = EAGAIN;
			return -1;
		}
		size_t len = iov[0].iov_len < PIPE_BUF ? iov[0].iov_len : PIPE_BUF;
		return write(o->fd, iov[0].iov_base, len);
	}
	return writev(o->fd, iov, n);
}

int64_t outlet_writev(struct outlet *o, struct iovec *iov, int n, const _Atomic int *stop)
{
	uint64_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (o->fd < 0)
		return (int64_t)total;
	uint64_t left = total, wait_start = 0;
	while (left) {
		while (n && !iov->iov_len) {
			iov++;
			n--;
		}
		ssize_t k = try_write(o, iov, n);
		if (k > 0) {
			__atomic_store_n(&o->stalled, false, __ATOMIC_RELAXED);
			wait_start = 0;
			left -= (uint64_t)k;
			while (n && (size_t)k >= iov->iov_len) {
				k -= (ssize_t)iov->iov_len;
				iov++;
				n--;
			}
			if (n) {
				iov->iov_base = (uint8_t *)iov->iov_base + k;
				iov->iov_len -= (size_t)k;
			}
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return left < total ? (int64_t)(total - left) : (k == 0 ? -EIO : -errno);
		/* The consumer takes nothing now. */
		uint64_t now = util_now_ns();
		if (!wait_start)
			wait_start = now;
		if (now - wait_start >= OUTLET_STALL_MS * 1000000ull)
			__atomic_store_n(&o->stalled, true, __ATOMIC_RELAXED);
		if (__atomic_load_n(&o->stalled, __ATOMIC_RELAXED) || (stop && atomic_load(stop))) {
			/* Atomic: vCPUs may write the same outlet at once. */
			__atomic_fetch_add(&o->dropped, left, __ATOMIC_RELAXED);
			return (int64_t)total;
		}
		struct pollfd p = {.fd = o->fd, .events = POLLOUT};
		poll(&p, 1, 10); /* short slices: the stop flag is looked at again */
	}
	return (int64_t)total;
}

int64_t outlet_write(struct outlet *o, const void *buf, size_t len, const _Atomic int *stop)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
	return outlet_writev(o, &v, 1, stop);
}

void outlet_close(struct outlet *o)
{
	if (o->own && o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	o->own = false;
}
