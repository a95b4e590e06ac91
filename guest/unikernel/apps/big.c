/* big: carries 3 MiB of zeroed data, to test images that do not fit --mem. */
#include "wrt.h"

static char big[3 << 20];

int main(int argc, char **argv)
{
	big[argc] = 1;
	return big[(argc * 4096) % sizeof(big)] + (int)(argv[0][0] == 0);
}
