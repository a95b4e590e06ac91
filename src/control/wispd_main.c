/* wispd: the Wisp daemon (see wispd.c). */
#include "control/wispd.h"

int main(int argc, char **argv)
{
	return wispd_main(argc, argv);
}
