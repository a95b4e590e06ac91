/* halt: executes HLT with interrupts off. Built as halt-cpl0.elf (at CPL3
 * HLT is a #GP, which the fault tests cover): the VMM must report the halt
 * as a crash with the registers, not hang. */
#include "wrt.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	rt_puts("halt: halting");
	__asm__ volatile("cli; hlt");
	return 3;
}
