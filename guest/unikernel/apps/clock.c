/* clock: prints the host's wall-clock time in seconds since the epoch and
 * checks that the monotonic clock moves forward. */
#include "wrt.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	uint64_t m0 = rt_monotonic_ns();
	uint64_t wall = rt_wall_ns();
	uint64_t m1 = rt_monotonic_ns();
	rt_printf("wall %lu.%09lu\n", (unsigned long)(wall / 1000000000u),
		  (unsigned long)(wall % 1000000000u));
	if (m0 == 0 || m1 < m0) {
		rt_puts("clock: monotonic clock broken");
		return 1;
	}
	rt_printf("monotonic ok (+%lu ns)\n", (unsigned long)(m1 - m0));
	return 0;
}
