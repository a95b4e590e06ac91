/* `wisp resume VM...`: run a paused VM again. */
#include "cli/cli.h"

int cmd_resume(int argc, char **argv)
{
	return client_vm_action(argc, argv, "resume", "usage: wisp resume [--socket PATH] VM...\n");
}
