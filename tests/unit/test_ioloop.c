/* The I/O loop: handlers are called for their fds, a deleted handler is
 * never called again (even with its event already fetched in the same
 * batch), and the thread starts and stops. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/ioloop.h"

struct probe {
	struct ioloop *loop;
	int fd;
	int calls;
	struct probe *victim; /* deleted (and its fd closed) by this handler */
};

static void handler(void *opaque, uint32_t events)
{
	struct probe *p = opaque;
	uint64_t v;
	p->calls++;
	(void)events;
	if (read(p->fd, &v, sizeof(v)) < 0)
		return;
	if (p->victim) {
		ioloop_del(p->loop, p->victim->fd);
		close(p->victim->fd);
		p->victim->fd = -1;
	}
}

static void poke(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void test_dispatch_and_del(void **state)
{
	(void)state;
	struct ioloop loop;
	assert_int_equal(ioloop_init(&loop, "t"), 0);
	struct probe a = {&loop, eventfd(0, EFD_NONBLOCK), 0, NULL};
	struct probe b = {&loop, eventfd(0, EFD_NONBLOCK), 0, NULL};
	assert_int_equal(ioloop_add(&loop, a.fd, EPOLLIN, handler, &a), 0);
	assert_int_equal(ioloop_add(&loop, a.fd, EPOLLIN, handler, &a), -EEXIST);
	assert_int_equal(ioloop_add(&loop, -1, EPOLLIN, handler, &a), -EINVAL);
	assert_int_equal(ioloop_add(&loop, b.fd, EPOLLIN, handler, &b), 0);
	assert_int_equal(ioloop_run_once(&loop, 0), 0);
	poke(a.fd);
	assert_int_equal(ioloop_run_once(&loop, 100), 1);
	assert_int_equal(a.calls, 1);
	/* Both ready in one batch; whichever runs first deletes the other. */
	a.victim = &b;
	b.victim = &a;
	poke(a.fd);
	poke(b.fd);
	assert_int_equal(ioloop_run_once(&loop, 100), 1);
	assert_int_equal(a.calls + b.calls, 2); /* a once before, then one of the two */
	assert_int_equal(ioloop_mod(&loop, 12345, EPOLLIN), -ENOENT);
	if (a.fd >= 0)
		close(a.fd);
	if (b.fd >= 0)
		close(b.fd);
	ioloop_destroy(&loop);
}

static void test_many_slots(void **state)
{
	(void)state;
	struct ioloop loop;
	assert_int_equal(ioloop_init(&loop, "t"), 0);
	struct probe p[40];
	for (int i = 0; i < 40; i++) {
		p[i] = (struct probe){&loop, eventfd(0, EFD_NONBLOCK), 0, NULL};
		assert_int_equal(ioloop_add(&loop, p[i].fd, EPOLLIN, handler, &p[i]), 0);
	}
	poke(p[39].fd);
	assert_int_equal(ioloop_run_once(&loop, 100), 1);
	assert_int_equal(p[39].calls, 1);
	for (int i = 0; i < 40; i++) {
		ioloop_del(&loop, p[i].fd);
		close(p[i].fd);
	}
	ioloop_destroy(&loop);
}

static void test_thread(void **state)
{
	(void)state;
	struct ioloop loop;
	assert_int_equal(ioloop_init(&loop, "t"), 0);
	struct probe a = {&loop, eventfd(0, EFD_NONBLOCK), 0, NULL};
	assert_int_equal(ioloop_add(&loop, a.fd, EPOLLIN, handler, &a), 0);
	assert_int_equal(ioloop_start(&loop), 0);
	poke(a.fd);
	for (int i = 0; i < 1000 && !__atomic_load_n(&a.calls, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	ioloop_stop(&loop);
	ioloop_stop(&loop); /* idempotent */
	assert_int_equal(a.calls, 1);
	ioloop_destroy(&loop);
	close(a.fd);
}

static void count_fire(void *opaque)
{
	(*(int *)opaque)++;
}

/* A timer fires once, after its delay, on the loop; re-arming replaces the
 * delay, arming with 0 disarms, and other fds are served meanwhile. */
static void test_timer(void **state)
{
	(void)state;
	struct ioloop loop;
	struct ioloop_timer t;
	int fired = 0;
	assert_int_equal(ioloop_init(&loop, "t"), 0);
	assert_int_equal(ioloop_timer_init(&loop, &t, count_fire, &fired), 0);
	assert_int_equal(ioloop_run_once(&loop, 30), 0); /* disarmed: nothing */
	ioloop_timer_arm(&t, 20 * 1000000ull);
	assert_int_equal(ioloop_run_once(&loop, 0), 0); /* not yet */
	assert_int_equal(fired, 0);
	assert_int_equal(ioloop_run_once(&loop, 1000), 1);
	assert_int_equal(fired, 1);
	assert_int_equal(ioloop_run_once(&loop, 50), 0); /* one-shot */
	ioloop_timer_arm(&t, 1);
	ioloop_timer_arm(&t, 0); /* disarmed before it fires */
	assert_int_equal(ioloop_run_once(&loop, 30), 0);
	assert_int_equal(fired, 1);
	/* An fd ready while the timer waits is served first. */
	struct probe a = {.loop = &loop, .fd = eventfd(0, EFD_NONBLOCK)};
	assert_int_equal(ioloop_add(&loop, a.fd, EPOLLIN, handler, &a), 0);
	ioloop_timer_arm(&t, 40 * 1000000ull);
	poke(a.fd);
	assert_int_equal(ioloop_run_once(&loop, 1000), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(fired, 1);
	assert_int_equal(ioloop_run_once(&loop, 1000), 1);
	assert_int_equal(fired, 2);
	ioloop_timer_close(&t);
	ioloop_timer_close(&t); /* twice: no-op */
	ioloop_destroy(&loop);
	close(a.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch_and_del),
		cmocka_unit_test(test_many_slots),
		cmocka_unit_test(test_thread),
		cmocka_unit_test(test_timer),
	};
	return cmocka_run_group_tests_name("ioloop", tests, NULL, NULL);
}
