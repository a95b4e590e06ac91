/* wisp-vmm: the VMM process of one daemon-run VM (see vmm_shell.c). */
#include "control/ctl_proto.h"

int main(int argc, char **argv)
{
	return shell_main(argc, argv);
}
