/* Token buckets and the rate limiter of a device (util.h). Levels are whole
 * tokens; the part of a token earned since the last refill is kept in
 * token-nanoseconds (frac), so that many small refills lose nothing and a
 * rate of 1 per second works as well as 10 GB per second. */
#include "util/util.h"

#define NS 1000000000ull

typedef unsigned __int128 u128;

static void refill(struct tbucket *b, uint64_t now)
{
	if (now <= b->last) /* a clock that went back earns nothing */
		return;
	u128 earned = (u128)(now - b->last) * b->rate + b->frac;
	b->last = now;
	u128 room = (u128)((__int128)b->burst - b->level); /* level <= burst always */
	u128 whole = earned / NS;
	if (whole >= room) {
		b->level = (int64_t)b->burst;
		b->frac = 0; /* full: what is earned beyond the top is lost */
	} else {
		b->level += (int64_t)whole;
		b->frac = (uint64_t)(earned % NS);
	}
}

void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
	/* The level is signed: keep the capacity and the debt within it. */
	const uint64_t max = 1ull << 62;
	b->rate = rate;
	b->burst = burst ? burst : rate;
	if (b->burst > max)
		b->burst = max;
	if (!b->burst)
		b->burst = 1;
	b->level = (int64_t)b->burst;
	b->frac = 0;
	b->last = now;
}

uint64_t tbucket_wait(struct tbucket *b, uint64_t n, uint64_t now)
{
	if (!b->rate)
		return 0;
	refill(b, now);
	int64_t need = (int64_t)(n < b->burst ? n : b->burst);
	if (b->level >= need)
		return 0;
	/* Time to earn (need - level) tokens, less the fraction already earned,
	 * rounded up so that the bucket really has them then. */
	u128 missing = (u128)((__int128)need - b->level) * NS - b->frac;
	u128 ns = (missing + b->rate - 1) / b->rate;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void tbucket_take(struct tbucket *b, uint64_t n)
{
	if (!b->rate)
		return;
	/* The debt is about one request at most; saturate far below INT64_MIN. */
	const int64_t floor = -(int64_t)(1ull << 62);
	__int128 l = (__int128)b->level - n;
	b->level = l < floor ? floor : (int64_t)l;
}

void ratelimit_init(struct ratelimit *r, const struct ratelimit_conf *c, uint64_t now)
{
	static const struct ratelimit_conf none;
	if (!c)
		c = &none;
	tbucket_init(&r->bytes, c->bw, c->bw_burst, now);
	tbucket_init(&r->ops, c->ops, c->ops_burst, now);
	r->throttled = 0;
}

bool ratelimit_on(const struct ratelimit *r)
{
	return r->bytes.rate || r->ops.rate;
}

uint64_t ratelimit_wait(struct ratelimit *r, uint64_t bytes, uint64_t now)
{
	uint64_t a = tbucket_wait(&r->bytes, bytes, now), b = tbucket_wait(&r->ops, 1, now);
	uint64_t w = a > b ? a : b;
	if (w)
		r->throttled++;
	return w;
}

void ratelimit_charge(struct ratelimit *r, uint64_t bytes)
{
	tbucket_take(&r->bytes, bytes);
	tbucket_take(&r->ops, 1);
}

uint64_t ratelimit_admit(struct ratelimit *r, uint64_t bytes, uint64_t now)
{
	uint64_t w = ratelimit_wait(r, bytes, now);
	if (!w)
		ratelimit_charge(r, bytes);
	return w;
}
