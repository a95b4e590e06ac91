/* The I/O event loop (see ioloop.h). epoll's data field carries the slot
 * index and the slot's generation, so that an event fetched in the same batch
 * as the deletion of its handler is recognised as stale and dropped. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "security/security.h"
#include "vmm/ioloop.h"

#define BATCH 32

static uint64_t pack(int slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)slot;
}

int ioloop_init(struct ioloop *loop, const char *name)
{
	memset(loop, 0, sizeof(*loop));
	loop->stopfd = -1;
	loop->pausefd = -1;
	loop->name = name;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->cond, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->stopfd < 0) {
		int e = -errno;
		ioloop_destroy(loop);
		return e;
	}
	/* The stop fd is not a slot: data.u64 = UINT64_MAX marks it. */
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stopfd, &ev) < 0) {
		int e = -errno;
		ioloop_destroy(loop);
		return e;
	}
	/* Nor is the pause fd: UINT64_MAX - 1. */
	loop->pausefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event pev = {.events = EPOLLIN, .data.u64 = UINT64_MAX - 1};
	if (loop->pausefd < 0 || epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->pausefd, &pev) < 0) {
		int e = -errno;
		ioloop_destroy(loop);
		return e;
	}
	return 0;
}

static int find_slot(const struct ioloop *loop, int fd)
{
	for (int i = 0; i < loop->nr_slots; i++)
		if (loop->slots[i].fn && loop->slots[i].fd == fd)
			return i;
	return -1;
}

static int add_locked(struct ioloop *loop, int fd, uint32_t events, ioloop_fn fn, void *opaque)
{
	if (find_slot(loop, fd) >= 0)
		return -EEXIST;
	int i = 0;
	while (i < loop->nr_slots && loop->slots[i].fn)
		i++;
	if (i == loop->nr_slots) {
		int n = loop->nr_slots ? loop->nr_slots * 2 : 16;
		struct ioloop_slot *s = realloc(loop->slots, (size_t)n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		memset(s + loop->nr_slots, 0, (size_t)(n - loop->nr_slots) * sizeof(*s));
		loop->slots = s;
		loop->nr_slots = n;
	}
	struct ioloop_slot *s = &loop->slots[i];
	s->gen++;
	struct epoll_event ev = {.events = events, .data.u64 = pack(i, s->gen)};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	s->fd = fd;
	s->fn = fn;
	s->opaque = opaque;
	return 0;
}

int ioloop_add(struct ioloop *loop, int fd, uint32_t events, ioloop_fn fn, void *opaque)
{
	if (fd < 0 || !fn)
		return -EINVAL;
	pthread_mutex_lock(&loop->lock);
	int r = add_locked(loop, fd, events, fn, opaque);
	pthread_mutex_unlock(&loop->lock);
	return r;
}

int ioloop_mod(struct ioloop *loop, int fd, uint32_t events)
{
	pthread_mutex_lock(&loop->lock);
	int i = find_slot(loop, fd), r = -ENOENT;
	if (i >= 0) {
		struct epoll_event ev = {.events = events, .data.u64 = pack(i, loop->slots[i].gen)};
		r = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&loop->lock);
	return r;
}

void ioloop_del(struct ioloop *loop, int fd)
{
	pthread_mutex_lock(&loop->lock);
	int i = find_slot(loop, fd);
	if (i >= 0) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		loop->slots[i].fn = NULL;
		loop->slots[i].opaque = NULL;
		loop->slots[i].fd = -1;
		loop->slots[i].gen++; /* events already fetched for it are now stale */
	}
	pthread_mutex_unlock(&loop->lock);
}

/* Dispatch one batch; returns handlers called, or -1 when asked to stop. */
static int dispatch(struct ioloop *loop, const struct epoll_event *ev, int n)
{
	int called = 0;
	for (int k = 0; k < n; k++) {
		if (ev[k].data.u64 == UINT64_MAX)
			return -1;
		if (ev[k].data.u64 == UINT64_MAX - 1) {
			uint64_t cnt;
			if (read(loop->pausefd, &cnt, sizeof(cnt)) < 0) {
				/* already taken: the pause request itself is the state */
			}
			pthread_mutex_lock(&loop->lock);
			while (loop->pause_req) {
				loop->paused = true;
				pthread_cond_broadcast(&loop->cond);
				pthread_cond_wait(&loop->cond, &loop->lock);
			}
			loop->paused = false;
			pthread_mutex_unlock(&loop->lock);
			continue;
		}
		uint32_t i = (uint32_t)ev[k].data.u64, gen = (uint32_t)(ev[k].data.u64 >> 32);
		ioloop_fn fn = NULL;
		void *opaque = NULL;
		pthread_mutex_lock(&loop->lock);
		if (i < (uint32_t)loop->nr_slots && loop->slots[i].fn &&
		    loop->slots[i].gen == gen) {
			fn = loop->slots[i].fn;
			opaque = loop->slots[i].opaque;
		}
		pthread_mutex_unlock(&loop->lock);
		if (fn) {
			fn(opaque, ev[k].events);
			called++;
		}
	}
	return called;
}

int ioloop_run_once(struct ioloop *loop, int timeout_ms)
{
	struct epoll_event ev[BATCH];
	int n = epoll_wait(loop->epfd, ev, BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int r = dispatch(loop, ev, n);
	return r < 0 ? 0 : r;
}

static void on_timer(void *opaque, uint32_t events)
{
	struct ioloop_timer *t = opaque;
	uint64_t n;
	(void)events;
	/* Nothing to read: disarmed or re-armed since it fired. */
	if (read(t->fd, &n, sizeof(n)) == sizeof(n))
		t->fn(t->opaque);
}

int ioloop_timer_init(struct ioloop *loop, struct ioloop_timer *t, void (*fn)(void *opaque),
		      void *opaque)
{
	t->loop = loop;
	t->fn = fn;
	t->opaque = opaque;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->fd < 0)
		return -errno;
	int r = ioloop_add(loop, t->fd, EPOLLIN, on_timer, t);
	if (r) {
		close(t->fd);
		t->fd = -1;
	}
	return r;
}

void ioloop_timer_arm(struct ioloop_timer *t, uint64_t ns)
{
	if (t->fd < 0)
		return;
	/* A zero it_value would disarm: the shortest wait is 1 ns. */
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(ns / 1000000000u),
					      .tv_nsec = (long)(ns % 1000000000u)}};
	if (ns > (uint64_t)INT32_MAX * 1000000000u) /* far future: about 68 years */
		its.it_value.tv_sec = INT32_MAX;
	timerfd_settime(t->fd, 0, &its, NULL);
}

void ioloop_timer_close(struct ioloop_timer *t)
{
	if (t->fd < 0)
		return;
	close(t->fd);
	t->fd = -1;
}

static void *loop_thread(void *arg)
{
	struct ioloop *loop = arg;
	struct epoll_event ev[BATCH];
	for (;;) {
		/* The thread starts before the VM's set-up ends: it narrows
		 * itself to the I/O list at the first wake-up after the filters
		 * go on (until then the process-wide one holds it). */
		sec_seccomp_thread(SEC_THREAD_IO);
		int n = epoll_wait(loop->epfd, ev, BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break; /* cannot happen with a valid epfd; do not spin */
		}
		loop->wakeups++;
		if (dispatch(loop, ev, n) < 0)
			break;
	}
	return NULL;
}

int ioloop_start(struct ioloop *loop)
{
	if (loop->started)
		return 0;
	/* The I/O thread takes no signals: SIGINT/SIGALRM belong to the main
	 * thread, the kick signal to vCPU threads (the thread lets SIGSYS in
	 * itself: sec_seccomp_thread). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&loop->thread, NULL, loop_thread, loop);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	loop->started = true;
	return 0;
}

void ioloop_stop(struct ioloop *loop)
{
	if (!loop->started)
		return;
	uint64_t one = 1;
	while (write(loop->stopfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(loop->thread, NULL);
	loop->started = false;
}

void ioloop_pause(struct ioloop *loop)
{
	if (!loop->started)
		return;
	pthread_mutex_lock(&loop->lock);
	loop->pause_req = true;
	pthread_mutex_unlock(&loop->lock);
	uint64_t one = 1;
	while (write(loop->pausefd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&loop->lock);
	while (!loop->paused)
		pthread_cond_wait(&loop->cond, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
}

void ioloop_resume(struct ioloop *loop)
{
	pthread_mutex_lock(&loop->lock);
	loop->pause_req = false;
	pthread_cond_broadcast(&loop->cond);
	pthread_mutex_unlock(&loop->lock);
}

void ioloop_destroy(struct ioloop *loop)
{
	ioloop_stop(loop);
	if (loop->epfd > 0)
		close(loop->epfd);
	if (loop->stopfd >= 0)
		close(loop->stopfd);
	if (loop->pausefd >= 0)
		close(loop->pausefd);
	loop->pausefd = -1;
	free(loop->slots);
	loop->slots = NULL;
	loop->nr_slots = 0;
	loop->epfd = loop->stopfd = -1;
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->cond);
}
