/* Token buckets and the device rate limiter (src/util/ratelimit.c), on a
 * clock the test drives: the burst goes at once, then the rate holds over
 * any number of small or large requests; a request larger than the bucket
 * goes when it is full and is paid back; the wait asked for is the wait
 * needed; huge rates and clocks neither overflow nor wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/util.h"

#define MS 1000000ull
#define S  1000000000ull

static void test_unlimited(void **state)
{
	(void)state;
	struct ratelimit r;
	ratelimit_init(&r, NULL, 0);
	assert_false(ratelimit_on(&r));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_admit(&r, 1 << 20, 0), 0);
	assert_int_equal(r.throttled, 0);
}

static void test_burst_then_wait(void **state)
{
	(void)state;
	struct tbucket b;
	tbucket_init(&b, 1000, 100, 0); /* 1000 tokens/s, 100 at most */
	assert_int_equal(tbucket_wait(&b, 100, 0), 0);
	tbucket_take(&b, 100);
	/* Empty: 10 tokens take exactly 10 ms. */
	assert_int_equal(tbucket_wait(&b, 10, 0), 10 * MS);
	assert_int_equal(tbucket_wait(&b, 10, 10 * MS - 1), 1);
	assert_int_equal(tbucket_wait(&b, 10, 10 * MS), 0);
	/* A quiet time refills only up to the burst. */
	assert_int_equal(tbucket_wait(&b, 101, 100 * S), 0); /* capped: 100 needed */
	assert_int_equal(b.level, 100);
}

static void test_default_burst_is_one_second(void **state)
{
	(void)state;
	struct tbucket b;
	tbucket_init(&b, 4096, 0, 0);
	assert_int_equal(b.burst, 4096);
	assert_int_equal(b.level, 4096);
}

/* Over 10 s of simulated time, requests of every size taken as soon as the
 * bucket lets them come to rate * 10 + burst, within one request. */
static void check_rate(uint64_t rate, uint64_t burst, uint64_t req)
{
	struct tbucket b;
	tbucket_init(&b, rate, burst, 5 * S);
	uint64_t now = 5 * S, end = 15 * S, taken = 0;
	for (;;) {
		uint64_t w = tbucket_wait(&b, req, now);
		if (now + w > end)
			break;
		now += w;
		tbucket_take(&b, req);
		taken += req;
	}
	uint64_t want = rate * 10 + (burst ? burst : rate);
	assert_true(taken <= want + req);
	assert_true(taken + req >= want);
}

static void test_rate_holds(void **state)
{
	(void)state;
	check_rate(1000, 100, 1);
	check_rate(1000, 100, 7);
	check_rate(1 << 20, 64 << 10, 4096);
	check_rate(3, 1, 1);		     /* a rate below one per request time */
	check_rate(1000, 100, 250);	     /* requests larger than the bucket */
	check_rate(10ull << 30, 0, 1 << 20); /* 10 GiB/s */
	check_rate(999983, 7919, 4093);	     /* primes: the remainders add up */
}

static void test_large_request_owes(void **state)
{
	(void)state;
	struct tbucket b;
	tbucket_init(&b, 1000, 100, 0);
	/* Larger than the bucket: goes when it is full, then is paid back. */
	assert_int_equal(tbucket_wait(&b, 500, 0), 0);
	tbucket_take(&b, 500);
	assert_int_equal(b.level, -400);
	/* Not even an empty request goes while the bucket owes. */
	assert_int_equal(tbucket_wait(&b, 0, 0), 400 * MS);
	assert_int_equal(tbucket_wait(&b, 1, 0), 401 * MS);
	assert_int_equal(tbucket_wait(&b, 0, 400 * MS), 0);
}

static void test_both_buckets(void **state)
{
	(void)state;
	struct ratelimit r;
	/* 1 MiB/s and 10 ops/s, bursts of 64 KiB and 2 ops. */
	ratelimit_init(&r, &(struct ratelimit_conf){1 << 20, 64 << 10, 10, 2}, 0);
	assert_true(ratelimit_on(&r));
	assert_int_equal(ratelimit_admit(&r, 4096, 0), 0);
	assert_int_equal(ratelimit_admit(&r, 4096, 0), 0);
	/* The ops bucket is empty: 100 ms for the next, and nothing charged. */
	assert_int_equal(ratelimit_admit(&r, 4096, 0), 100 * MS);
	assert_int_equal(r.bytes.level, (64 << 10) - 8192);
	assert_int_equal(r.throttled, 1);
	/* A second later both are full again: 128 KiB (twice the byte
	 * bucket) goes, and the next operation waits for the 64 KiB owed. */
	assert_int_equal(ratelimit_admit(&r, 128 << 10, S), 0);
	assert_int_equal(ratelimit_admit(&r, 0, S), 62500 * 1000ull); /* 64 KiB at 1 MiB/s */
	assert_int_equal(ratelimit_admit(&r, 0, S + 62500 * 1000ull), 0);
	assert_int_equal(r.throttled, 2);
}

static void test_clock_edges(void **state)
{
	(void)state;
	struct tbucket b;
	tbucket_init(&b, UINT64_MAX, UINT64_MAX, UINT64_MAX - S);
	tbucket_take(&b, UINT64_MAX);
	tbucket_take(&b, UINT64_MAX); /* saturates, never wraps to positive */
	assert_true(b.level < 0);
	assert_int_equal(tbucket_wait(&b, 1, UINT64_MAX), 0);
	/* A clock that goes back earns nothing and breaks nothing. */
	tbucket_init(&b, 10, 10, 10 * S);
	tbucket_take(&b, 10);
	assert_int_equal(tbucket_wait(&b, 1, 5 * S), 100 * MS);
	assert_int_equal(tbucket_wait(&b, 1, 10 * S + 100 * MS), 0);
	/* A wait that cannot fit in 64 bits saturates. */
	tbucket_init(&b, 1, 1ull << 62, 0);
	tbucket_take(&b, 1ull << 62);
	tbucket_take(&b, 1ull << 62);
	assert_int_equal(tbucket_wait(&b, 1ull << 62, 0), UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_burst_then_wait),
		cmocka_unit_test(test_default_burst_is_one_second),
		cmocka_unit_test(test_rate_holds),
		cmocka_unit_test(test_large_request_owes),
		cmocka_unit_test(test_both_buckets),
		cmocka_unit_test(test_clock_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
