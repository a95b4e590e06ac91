/* noop: does nothing and exits 0. The smallest possible guest: what a VM
 * costs when the guest does no work. */
#include "wrt.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 0;
}
