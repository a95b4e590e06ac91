/* hello: the greeting of `make demo`. */
#include "wrt.h"

int main(int argc, char **argv)
{
	rt_puts("Hello from a Wisp unikernel!");
	for (int i = 1; i < argc; i++)
		rt_printf("  argv[%d] = %s\n", i, argv[i]);
	return 0;
}
