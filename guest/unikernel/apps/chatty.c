/* chatty: prints LINES numbered lines of 64 bytes (argument, default 4096),
 * then sleeps for ever: more output than a console ring holds. */
#include "wrt.h"

int main(int argc, char **argv)
{
	long long lines = argc > 1 ? rt_atoll(argv[1]) : 4096;
	for (long long i = 0; i < lines; i++)
		rt_printf("line %08lld ................................................\n", i);
	rt_puts("chatty: done");
	for (;;)
		rt_poll(UINT64_MAX);
}
