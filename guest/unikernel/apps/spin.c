/* spin: prints a line, then loops for ever without an exit (tests --timeout
 * and signals). */
#include "wrt.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	rt_puts("spin: spinning");
	for (;;)
		__asm__ volatile("pause");
}
