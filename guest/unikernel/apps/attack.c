/* attack: what a hostile application tries against its own VM and its host
 * (tests/integration/test_security.sh, docs/security.md), one way per
 * argument:
 *   flood     prints for ever (a stalled console consumer must not pin the VM)
 *   pollwrap  POLL with a timeout near 2^64: must sleep, not wrap and spin
 *   idt       from CPL3, writes a DPL3 gate into the IDT and takes it (int3), then
 *             `cli; hlt` at CPL0 (the IDT must be supervisor-only)
 *   stack     recurses until the stack overflows (the guard page must stop it)
 *   triple    (attack-cpl0.elf) loads an empty IDT and faults: a triple fault
 *   storm     an exit storm: a hypercall (a VM exit to the VMM) in a loop,
 *             for ever; prints the exits per second every second */
#include "wrt.h"

static volatile uint64_t sink, depth_limit = UINT64_MAX;

static uint64_t recurse(uint64_t n)
{
	volatile uint8_t pad[512];
	pad[0] = (uint8_t)n;
	if (n == depth_limit) /* never: only hides the recursion from the compiler */
		return 0;
	return recurse(n + 1) + pad[0];
}

static void ring0(void)
{
	__asm__ volatile("cli; hlt");
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "flood")) {
		for (uint64_t i = 0;; i++)
			rt_printf("flood %016llx "
				  "..................................................\n",
				  (unsigned long long)i);
	}
	if (!strcmp(what, "pollwrap")) {
		rt_puts("pollwrap: sleeping");
		rt_poll(UINT64_MAX - 1000);
		rt_puts("pollwrap: woke early");
		return 3;
	}
	if (!strcmp(what, "idt")) {
		uint64_t h = (uint64_t)(uintptr_t)ring0;
		uint64_t lo = (h & 0xffff) | (0x08ull << 16) | (0xeeull << 40) /* DPL3 gate */ |
			      ((h >> 16 & 0xffff) << 48);
		volatile uint64_t *gate =
			(volatile uint64_t *)(uintptr_t)(WISP_IDT_GPA + 3 * 16); /* #BP */
		gate[0] = lo;
		gate[1] = h >> 32;
		rt_puts("attack: gate installed");
		__asm__ volatile("int3");
		rt_puts("attack: back from CPL0");
		return 3;
	}
	if (!strcmp(what, "stack")) {
		uint64_t guard = (rt_boot_info()->image_end + 4095) & ~4095ull;
		rt_printf("stack: guard at 0x%llx\n", (unsigned long long)guard);
		sink = recurse(0);
		return 3;
	}
	if (!strcmp(what, "triple")) {
		struct __attribute__((packed)) {
			uint16_t limit;
			uint64_t base;
		} idtr = {0, 0};
		__asm__ volatile("lidt %0; ud2" : : "m"(idtr));
		return 3;
	}
	if (!strcmp(what, "storm")) {
		uint64_t t0 = rt_monotonic_ns(), n = 0;
		for (;;) {
			uint64_t t = rt_monotonic_ns(); /* one exit each */
			if (++n % 1024 == 0 && t - t0 >= 1000000000ull) {
				rt_printf("storm: %llu exits/s\n",
					  (unsigned long long)(n * 1000000000ull / (t - t0)));
				t0 = t;
				n = 0;
			}
		}
	}
	rt_puts("usage: attack flood|pollwrap|idt|stack|triple|storm");
	return 2;
}
