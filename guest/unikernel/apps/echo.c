/* echo: prints its arguments, one per line, in brackets (tests command lines). */
#include "wrt.h"

int main(int argc, char **argv)
{
	rt_printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		rt_printf("[%s]\n", argv[i]);
	return 0;
}
