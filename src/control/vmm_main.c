/* wisp-vmm: the VMM process of one daemon-run VM (see vmm_shell.c). */
#include "control/control.h"

int main(int argc, char **argv)
{
	return shell_main(argc, argv);
}
