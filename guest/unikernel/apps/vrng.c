/* vrng: reads random bytes from virtio-rng and reports the rate; checks
 * that they look random (every byte value seen, about half the bits set,
 * two reads differ). Usage: vrng [BYTES [CHUNK]] (defaults 1 MiB, 64 KiB). */
#include "wrt_virtio.h"

static uint8_t buf[1 << 20];

/* No libgcc here: count bits by hand. */
static int bits(uint64_t v)
{
	int n = 0;
	for (; v; v &= v - 1)
		n++;
	return n;
}

int main(int argc, char **argv)
{
	long long total = argc > 1 ? rt_atoll(argv[1]) : 1 << 20;
	long long chunk = argc > 2 ? rt_atoll(argv[2]) : 64 << 10;
	if (total <= 0 || chunk <= 0 || chunk > (long long)sizeof(buf)) {
		rt_puts("usage: vrng [BYTES [CHUNK]] (CHUNK at most 1 MiB)");
		return 2;
	}
	uint64_t seen[4] = {0}, ones = 0, done = 0;
	uint64_t t0 = rt_monotonic_ns();
	while ((long long)done < total) {
		size_t n =
			(size_t)(total - (long long)done < chunk ? total - (long long)done : chunk);
		long got = wrt_rng_read(buf, n);
		if (got <= 0) {
			rt_puts(got < 0 ? "vrng: no virtio-rng device (run with --rng)"
					: "vrng: device returned nothing");
			return 1;
		}
		for (long i = 0; i < got; i++) {
			seen[buf[i] >> 6] |= 1ull << (buf[i] & 63);
			ones += (uint64_t)bits(buf[i]);
		}
		done += (uint64_t)got;
	}
	uint64_t ns = rt_monotonic_ns() - t0;
	uint8_t a[16], b[16];
	if (wrt_rng_read(a, 16) != 16 || wrt_rng_read(b, 16) != 16 || !memcmp(a, b, 16)) {
		rt_puts("vrng: two reads gave the same bytes");
		return 1;
	}
	int values = 0;
	for (int i = 0; i < 4; i++)
		values += bits(seen[i]);
	uint64_t permille = ones * 1000 / (done * 8);
	rt_printf("vrng: %lu bytes in %lu us: %lu bytes/s\n", (unsigned long)done,
		  (unsigned long)(ns / 1000), (unsigned long)(ns ? done * 1000000000ull / ns : 0));
	rt_printf("vrng: %d byte values seen, %lu.%lu%% of bits set\n", values,
		  (unsigned long)(permille / 10), (unsigned long)(permille % 10));
	if (done >= 65536 && (values != 256 || permille < 490 || permille > 510)) {
		rt_puts("vrng: bytes do not look random");
		return 1;
	}
	rt_puts("vrng: ok");
	return 0;
}
