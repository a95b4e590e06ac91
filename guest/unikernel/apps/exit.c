/* exit: exits with the status given as its first argument (default 0). */
#include "wrt.h"

int main(int argc, char **argv)
{
	long long s = argc > 1 ? rt_atoll(argv[1]) : 0;
	if (s < 0) {
		rt_puts("usage: exit STATUS");
		return 2;
	}
	if (argc > 2 && !strcmp(argv[2], "direct"))
		rt_exit((int)s); /* through the runtime call rather than main's return */
	return (int)s;
}
