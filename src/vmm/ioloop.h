/* The I/O event loop: one thread waiting in epoll on the fds of devices
 * (ioeventfds of virtqueues, TAP, sockets, io_uring completions) and calling
 * their handlers, so that device work never runs on a vCPU thread.
 *
 * Threading rule: ioloop_add may be called from any thread at any time. A
 * handler's opaque may be freed right after ioloop_del only when the handler
 * cannot be running: the caller is the loop's own thread (a handler), or the
 * loop is stopped. A handler deleted while events for it are still in the
 * current epoll batch is never called again (slots carry a generation), so a
 * handler may close and free another one. */
#ifndef WISP_IOLOOP_H
#define WISP_IOLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Called on the loop thread with the epoll events that fired. */
typedef void (*ioloop_fn)(void *opaque, uint32_t events);

struct ioloop_slot {
	int fd;
	uint32_t gen;
	ioloop_fn fn;
	void *opaque;
};

struct ioloop {
	int epfd;
	int stopfd; /* eventfd that wakes the thread to stop */
	pthread_t thread;
	bool started;
	const char *name;
	pthread_mutex_t lock; /* guards the slot table, never held in a handler */
	struct ioloop_slot *slots;
	int nr_slots;
	uint64_t wakeups; /* epoll_wait returns with work: for --stats and bench */
	/* Pausing (snapshots): the thread parks between two handlers. */
	int pausefd;
	pthread_cond_t cond;
	bool pause_req, paused;
};

/* Create the epoll instance; the thread starts with ioloop_start. */
int ioloop_init(struct ioloop *loop, const char *name);
/* Watch fd for events (EPOLLIN, EPOLLOUT, EPOLLET...) and call fn(opaque). */
int ioloop_add(struct ioloop *loop, int fd, uint32_t events, ioloop_fn fn, void *opaque);
/* Change the events watched for fd; -ENOENT if fd is not watched. */
int ioloop_mod(struct ioloop *loop, int fd, uint32_t events);
/* Stop watching fd (does not close it); no-op if not watched. */
void ioloop_del(struct ioloop *loop, int fd);
/* Start the thread (all signals blocked in it). */
int ioloop_start(struct ioloop *loop);
/* Ask the thread to finish and join it. Idempotent. */
void ioloop_stop(struct ioloop *loop);
/* Park the thread between two handlers and return once it is parked, so
 * that no device work runs until ioloop_resume (no-op if not started). */
void ioloop_pause(struct ioloop *loop);
/* Let a paused thread go on. */
void ioloop_resume(struct ioloop *loop);
/* Stop if needed and free everything. Safe on a zeroed or half-made loop. */
void ioloop_destroy(struct ioloop *loop);
/* A one-shot timer served by the loop (a timerfd among its fds): work that
 * must wait (a rate-limited queue) is deferred with it instead of sleeping,
 * so the loop keeps serving every other fd meanwhile. */
struct ioloop_timer {
	struct ioloop *loop;
	int fd; /* -1 until ioloop_timer_init */
	void (*fn)(void *opaque);
	void *opaque;
};
/* Create the timer on loop (disarmed); fn(opaque) runs on the loop thread
 * each time it fires. -errno. */
int ioloop_timer_init(struct ioloop *loop, struct ioloop_timer *t, void (*fn)(void *opaque),
		      void *opaque);
/* Fire once, ns nanoseconds from now (replacing any earlier arming); 0
 * disarms. No-op on a timer that was never made. */
void ioloop_timer_arm(struct ioloop_timer *t, uint64_t ns);
/* Close the timer at teardown, once the loop has stopped (the loop may be
 * gone already: it is not touched). Safe on a closed timer. */
void ioloop_timer_close(struct ioloop_timer *t);
/* Run one epoll_wait (up to timeout_ms) and dispatch on the calling thread;
 * returns the number of handlers called or -errno. Tests use it instead of a
 * thread. */
int ioloop_run_once(struct ioloop *loop, int timeout_ms);

#endif
