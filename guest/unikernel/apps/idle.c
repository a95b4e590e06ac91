/* idle: prints a line, then sleeps in the poll hypercall for ever (an idle
 * VM costs no CPU). */
#include "wrt.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	rt_puts("idle: waiting");
	for (;;)
		rt_poll(UINT64_MAX);
}
