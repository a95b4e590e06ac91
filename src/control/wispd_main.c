/* wispd: the Wisp daemon (see wispd.c). */
#include "control/control.h"

int main(int argc, char **argv)
{
	return wispd_main(argc, argv);
}
