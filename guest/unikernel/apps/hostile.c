/* hostile: breaks the hypercall ABI on purpose, one way per argument, to
 * show that the VMM answers with an error (or stops only this guest) and
 * never touches memory outside the guest. */
#include "wrt.h"

static int console(uint64_t buf, uint64_t len)
{
	volatile struct wisp_hc_console c = {buf, len, 0};
	rt_hypercall(WISP_HC_CONSOLE, (uint32_t)(uintptr_t)&c);
	return (int)c.ret;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	uint64_t mem = rt_boot_info()->mem_size;
	if (!strcmp(what, "buffers")) {
		/* Bad buffers inside a good argument struct: -EFAULT / -EINVAL. */
		int r1 = console(mem - 2, 16);			 /* runs off the end of RAM */
		int r2 = console(0xfffffffffffff000ull, 0x2000); /* wraps */
		int r3 = console(0x100000, 1ull << 40);		 /* absurd length */
		int r4 = console(mem + 0x1000, 1);		 /* beyond RAM */
		rt_printf("console results: %d %d %d %d\n", r1, r2, r3, r4);
		return (r1 == -14 && r2 == -14 && r3 == -22 && r4 == -14) ? 0 : 1;
	}
	if (!strcmp(what, "argptr")) {
		/* Argument struct outside RAM: the guest is stopped as crashed. */
		rt_hypercall(WISP_HC_CONSOLE, 0xfffffff0u);
		rt_puts("hostile: still running after a bad argument pointer");
		return 3;
	}
	if (!strcmp(what, "unknown")) {
		rt_hypercall(10, 0); /* in range, never assigned */
		return 3;
	}
	if (!strcmp(what, "width")) {
		outb(WISP_HC_BASE + WISP_HC_EXIT, 7); /* hypercalls are 32-bit writes */
		return 3;
	}
	rt_puts("usage: hostile buffers|argptr|unknown|width");
	return 2;
}
