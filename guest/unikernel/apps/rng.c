/* rng: the course's RNG device from a unikernel. Commands run left to right:
 *   seed S      seed the generator with S (0..4294967295)
 *   get N       print N numbers, one per line, in decimal
 *   bench [B]   read B bytes (default 64 KiB) and print the rate
 * e.g. `wisp run --rng-device rng.elf -- seed 42 get 5`. */
#include "rng_dev.h"

#define BENCH_DEFAULT (64u << 10)
#define MAX_COUNT     (1ll << 32)

static char out[4096];
static size_t out_len;

static void flush(void)
{
	rt_write(out, out_len);
	out_len = 0;
}

/* Numbers go out in 4 KiB batches: one console hypercall per batch rather
 * than per line, so `get` costs little beyond the device's own exits. */
static void emit(uint32_t v)
{
	if (out_len + 12 > sizeof(out))
		flush();
	out_len += (size_t)rt_snprintf(out + out_len, sizeof(out) - out_len, "%u\n", v);
}

static int usage(void)
{
	rt_puts("usage: rng [seed S] [get N] [bench [BYTES]]...");
	return 2;
}

static void bench(uintptr_t bar, uint64_t bytes)
{
	uint64_t words = (bytes + 3) / 4, mix = 0;
	uint64_t t0 = rt_monotonic_ns();
	for (uint64_t i = 0; i < words; i++)
		mix ^= rng_read(bar);
	uint64_t ns = rt_monotonic_ns() - t0;
	if (!ns)
		ns = 1;
	rt_printf("bench: %lu bytes in %lu us: %lu bytes/s, %lu numbers/s (xor %lx)\n",
		  (unsigned long)(words * 4), (unsigned long)(ns / 1000),
		  (unsigned long)(words * 4 * 1000000000ull / ns),
		  (unsigned long)(words * 1000000000ull / ns), (unsigned long)mix);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	uintptr_t bar = rng_open();
	if (!bar)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *cmd = argv[i];
		const char *arg = i + 1 < argc ? argv[i + 1] : 0;
		long long n = arg ? rt_atoll(arg) : -1;
		if (!strcmp(cmd, "seed")) {
			if (n < 0 || n > 0xffffffffll) {
				rt_printf("rng: seed '%s': must be a number from 0 to 4294967295\n",
					  arg ? arg : "");
				return 2;
			}
			rng_seed(bar, (uint32_t)n);
			i++;
		} else if (!strcmp(cmd, "get")) {
			if (n < 0 || n >= MAX_COUNT) {
				rt_printf("rng: get '%s': must be a count below 2^32\n",
					  arg ? arg : "");
				return 2;
			}
			for (long long k = 0; k < n; k++)
				emit(rng_read(bar));
			flush();
			i++;
		} else if (!strcmp(cmd, "bench")) {
			uint64_t bytes = BENCH_DEFAULT;
			if (arg && n > 0 && n < MAX_COUNT) {
				bytes = (uint64_t)n;
				i++;
			}
			bench(bar, bytes);
		} else {
			rt_printf("rng: unknown command '%s'\n", cmd);
			return usage();
		}
	}
	return 0;
}
