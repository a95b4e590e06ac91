/* fault: raises the exception named by its argument, so that tests can check
 * that the VMM reports it (vector, RIP) and exits non-zero. */
#include "wrt.h"

static volatile int zero;
static volatile uintptr_t low_address = 8; /* hidden from the compiler */

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	rt_printf("fault: raising %s\n", what);
	if (!strcmp(what, "pf"))
		return *(volatile int *)0xdead0000000ull; /* not mapped: #PF */
	if (!strcmp(what, "null"))
		return *(volatile int *)low_address; /* page 0 is left unmapped: #PF */
	if (!strcmp(what, "gp"))
		__asm__ volatile("cli; hlt"); /* hlt is privileged at CPL3: #GP */
	if (!strcmp(what, "ud"))
		__asm__ volatile("ud2");
	if (!strcmp(what, "de")) {
		unsigned q, d = (unsigned)zero;
		__asm__ volatile("divl %2" : "=a"(q) : "a"(7), "r"(d), "d"(0)); /* #DE */
		return (int)q;
	}
	if (!strcmp(what, "bp"))
		__asm__ volatile("int3"); /* gate DPL0: #GP from CPL3 */
	if (!strcmp(what, "stack")) {
		/* Point the stack at unmapped memory and push: #PF, then the
		 * handler runs on its own stack (RSP0) and still reports. */
		__asm__ volatile("mov $0xdead0000000, %rsp; push %rax");
	}
	rt_puts("usage: fault pf|null|gp|ud|de|bp|stack");
	return 2;
}
