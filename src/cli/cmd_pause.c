/* `wisp pause VM...`: stop running a VM's vCPU; its memory and state stay. */
#include "cli/cli.h"

int cmd_pause(int argc, char **argv)
{
	return client_vm_action(argc, argv, "pause", "usage: wisp pause [--socket PATH] VM...\n");
}
