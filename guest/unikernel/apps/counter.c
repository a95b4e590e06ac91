/* counter: prints "tick N" every PERIOD ms (argument, default 50), sleeping
 * in the poll hypercall in between; stops after COUNT ticks if given. Used
 * to see a VM run, pause and resume. */
#include "wrt.h"

int main(int argc, char **argv)
{
	long long period = argc > 1 ? rt_atoll(argv[1]) : 50;
	long long count = argc > 2 ? rt_atoll(argv[2]) : -1;
	if (period <= 0) {
		rt_puts("usage: counter [PERIOD_MS [COUNT]]");
		return 2;
	}
	uint64_t next = rt_monotonic_ns();
	for (long long i = 1; count < 0 || i <= count; i++) {
		next += (uint64_t)period * 1000000u;
		uint64_t now = rt_monotonic_ns();
		if (next > now)
			rt_poll(next - now);
		rt_printf("tick %lld\n", i);
	}
	return 0;
}
