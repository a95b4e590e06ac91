/* CPL0 code of the runtime, and all of it: the exception handler and the
 * PVH path's TSS/IDT setup. Built with -mgeneral-regs-only because it runs
 * on exceptions, when the application's SSE state must not be touched.
 * Under Wisp nothing here runs unless the application faults. */
#include "rt.h"

/* What the stubs in entry.S leave on the stack. */
struct rt_trap_frame {
	uint64_t vector, error_code, rip, cs, rflags, rsp, ss;
};

extern const uint64_t rt_trap_table[WISP_NR_TRAPS];
extern uint64_t rt_pvh_gdt[7];
extern uint8_t __pvh_tss[], __pvh_idt[], __pvh_ist_top[], __pvh_kstack_top[];

static struct wisp_hc_fault fault_record;

_Noreturn void rt_trap(struct rt_trap_frame *f)
{
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	fault_record = (struct wisp_hc_fault){f->vector, f->error_code, f->rip, f->cs,
					      f->rflags, f->rsp,	f->ss,	cr2};
	if (rt_booted_by_wisp) {
		rt_hypercall(WISP_HC_FAULT, (uint32_t)(uintptr_t)&fault_record);
	} else {
		char line[160];
		int n = rt_snprintf(
			line, sizeof(line),
			"\nunikernel fault: vector %lu error 0x%lx rip 0x%lx rsp 0x%lx cr2 0x%lx\n",
			(unsigned long)f->vector, (unsigned long)f->error_code,
			(unsigned long)f->rip, (unsigned long)f->rsp, (unsigned long)cr2);
		rt_com1_write(line, (size_t)n);
		rt_debug_exit(RT_FAULT_STATUS);
	}
	for (;;)
		__asm__ volatile("hlt");
}

void rt_pvh_setup(void)
{
	uint64_t tss = (uint64_t)(uintptr_t)__pvh_tss;
	uint64_t rsp0 = (uint64_t)(uintptr_t)__pvh_kstack_top,
		 ist1 = (uint64_t)(uintptr_t)__pvh_ist_top;
	memcpy(__pvh_tss + 4, &rsp0, 8);
	memcpy(__pvh_tss + 36, &ist1, 8);
	/* An all-zero I/O bitmap (the memory is fresh) grants every port, for
	 * KVMs that do not honour IOPL=3 for guests (see boot64.c in the VMM). */
	uint16_t iomap = RT_TSS_IOMAP;
	memcpy(__pvh_tss + 102, &iomap, 2);
	__pvh_tss[RT_TSS_LIMIT] = 0xff;
	rt_pvh_gdt[5] = (RT_TSS_LIMIT & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) |
			((uint64_t)(RT_TSS_LIMIT >> 16 & 0xf) << 48) | ((tss >> 24 & 0xff) << 56);
	rt_pvh_gdt[6] = tss >> 32;
	for (int v = 0; v < WISP_NR_TRAPS; v++) {
		uint64_t h = rt_trap_table[v];
		uint64_t lo = (h & 0xffff) | ((uint64_t)WISP_SEL_KCODE << 16) |
			      ((uint64_t)((v == 2 || v == 8) ? 1 : 0) << 32) | (0x8eull << 40) |
			      ((h >> 16 & 0xffff) << 48);
		uint64_t hi = h >> 32;
		memcpy(__pvh_idt + v * 16, &lo, 8);
		memcpy(__pvh_idt + v * 16 + 8, &hi, 8);
	}
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {WISP_NR_TRAPS * 16 - 1, (uint64_t)(uintptr_t)__pvh_idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)WISP_SEL_TSS));
}
