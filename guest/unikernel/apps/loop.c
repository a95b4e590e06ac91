/* loop: a compute loop timed by the host clock; prints ns per iteration.
 * Built twice: loop.elf runs at CPL3, loop-cpl0.elf at CPL0, to measure
 * what the privilege level costs on a given KVM. Argument: iterations. */
#include "wrt.h"

int main(int argc, char **argv)
{
	long long n = argc > 1 ? rt_atoll(argv[1]) : 10000000;
	if (n <= 0) {
		rt_puts("usage: loop ITERATIONS");
		return 2;
	}
	uint64_t x = 88172645463325252ull;
	uint64_t t0 = rt_monotonic_ns();
	for (long long i = 0; i < n; i++) {
		x ^= x << 13; /* xorshift64: a few dependent ALU ops per pass */
		x ^= x >> 7;
		x ^= x << 17;
	}
	uint64_t t1 = rt_monotonic_ns();
	uint64_t ns = t1 - t0;
	rt_printf("loop: %lld iterations in %lu ns: %lu.%03lu ns/iteration (x=%lx)\n", n,
		  (unsigned long)ns, (unsigned long)(ns / (uint64_t)n),
		  (unsigned long)(ns * 1000 / (uint64_t)n % 1000), (unsigned long)x);
	return 0;
}
