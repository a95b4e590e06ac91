/* 64-bit entry for unikernels: the VMM builds the GDT, TSS, IDT and page
 * tables itself and starts the vCPU at the application's entry point, at
 * CPL3, so that not one guest instruction has to run at CPL0 on the way in
 * (on nested KVMs that emulate CPL0, that is the difference between 0.3 ns
 * and 1.5 us per instruction). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define GDT_ENTRIES 7 /* null, kcode, kdata, udata, ucode, tss (2 slots) */
/* The TSS carries an I/O permission bitmap that grants every port, plus
 * the terminating all-ones byte. IOPL=3 alone is enough on hardware KVM; a
 * KVM that does not let a guest run with IOPL (PVM masks it) checks the
 * bitmap instead, so the application's `out` still reaches the VMM. */
#define TSS_GPA	  WISP_TSS_GPA
#define TSS_IOMAP 104
#define TSS_SIZE  (TSS_IOMAP + 8192 + 1)
#define TSS_LIMIT (TSS_SIZE - 1)

#define CR0_PE		0x1ull
#define CR0_MP		0x2ull
#define CR0_ET		0x10ull
#define CR0_NE		0x20ull
#define CR0_WP		0x10000ull
#define CR0_PG		0x80000000ull
#define CR4_PAE		0x20ull
#define CR4_OSFXSR	0x200ull
#define CR4_OSXMMEXCPT	0x400ull
#define EFER_LME	0x100ull
#define EFER_LMA	0x400ull
#define RFLAGS_RESERVED 0x2ull
#define RFLAGS_IOPL3	0x3000ull

/* A 16-byte interrupt gate to `handler` in the kernel code segment. */
static void idt_gate(uint8_t *slot, uint64_t handler, unsigned ist)
{
	uint64_t lo = (handler & 0xffff) | ((uint64_t)WISP_SEL_KCODE << 16) |
		      ((uint64_t)(ist & 7) << 32) |
		      (0x8eull << 40) /* present, DPL0, 64-bit interrupt gate */ |
		      ((handler >> 16 & 0xffff) << 48);
	uint64_t hi = handler >> 32;
	memcpy(slot, &lo, 8);
	memcpy(slot + 8, &hi, 8);
}

int x86_setup_unikernel(const struct guest_mem *mem, const struct x86_boot64 *b, uint64_t map_size)
{
	uint64_t *gdt = gmem_ptr(mem, WISP_GDT_GPA, 0x1000);
	uint8_t *idt = gmem_ptr(mem, WISP_IDT_GPA, WISP_NR_TRAPS * 16);
	uint8_t *tss = gmem_ptr(mem, TSS_GPA, TSS_SIZE);
	if (!gdt || !idt || !tss)
		return -EFAULT;
	memset(gdt, 0, 0x1000);
	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffull; /* kernel code: 64-bit, DPL0 */
	gdt[2] = 0x00cf92000000ffffull; /* kernel data */
	gdt[3] = 0x00cff2000000ffffull; /* user data: DPL3 */
	gdt[4] = 0x00affa000000ffffull; /* user code: 64-bit, DPL3 */
	uint64_t base = TSS_GPA;
	gdt[5] = (TSS_LIMIT & 0xffff) | ((base & 0xffffff) << 16) |
		 (0x89ull << 40) /* present, 64-bit TSS */ |
		 ((uint64_t)(TSS_LIMIT >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt[6] = base >> 32;

	memset(tss, 0, TSS_SIZE - 1); /* zero bits: every port allowed */
	tss[TSS_SIZE - 1] = 0xff;
	uint64_t rsp0 = WISP_RSP0_TOP, ist1 = WISP_IST_TOP;
	memcpy(tss + 4, &rsp0, 8);  /* RSP0: stack for faults taken from CPL3 */
	memcpy(tss + 36, &ist1, 8); /* IST1: stack for #DF and NMI */
	uint16_t iomap = TSS_IOMAP;
	memcpy(tss + 102, &iomap, 2);

	memset(idt, 0, WISP_NR_TRAPS * 16);
	if (b->trap_table) {
		const uint64_t *handlers = gmem_ptr(mem, b->trap_table, WISP_NR_TRAPS * 8);
		if (!handlers)
			return -EFAULT;
		for (int v = 0; v < WISP_NR_TRAPS; v++)
			if (handlers[v])
				idt_gate(idt + v * 16, handlers[v], (v == 2 || v == 8) ? 1 : 0);
	}
	int64_t r = x86_build_page_tables(mem, WISP_PML4_GPA, map_size, WISP_TSS_GPA);
	if (r < 0)
		return (int)r;
	uint64_t spare = (uint64_t)r; /* first free page after the tables */
	/* The runtime's structures (GDT, IDT, stacks, page tables, TSS) are
	 * supervisor-only: an application at CPL3 that could write them could
	 * install a gate and run at CPL0. Only the boot info stays readable.
	 * Everything below the image is so, which makes the page under the
	 * image a guard as well. */
	for (uint64_t a = 0x1000; a < WISP_IMAGE_MIN; a += 0x1000)
		if (a != WISP_BOOTINFO_GPA &&
		    (r = x86_page_restrict(mem, WISP_PML4_GPA, a, false, 0)))
			return (int)r;
	/* The stack grows down from the top of RAM towards the image: the page
	 * right after the image is not mapped, so an overflow faults there. */
	if (b->guard) {
		if (spare + 0x1000 > WISP_TSS_GPA)
			return -E2BIG;
		if ((r = x86_page_restrict(mem, WISP_PML4_GPA, b->guard, true, spare)))
			return (int)r;
	}
	return 0;
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, bool code64, unsigned dpl)
{
	return (struct kvm_segment){.base = 0,
				    .limit = 0xffffffff,
				    .selector = sel,
				    .type = type,
				    .present = 1,
				    .dpl = (uint8_t)dpl,
				    .db = code64 ? 0 : 1,
				    .s = 1,
				    .l = code64 ? 1 : 0,
				    .g = 1};
}

int x86_vcpu_enter64(struct vcpu *vcpu, const struct x86_boot64 *b)
{
	struct kvm_sregs sr;
	/* A warmed vCPU may have asked KVM to leave its special registers in
	 * kvm_run at the last exit: that saves an ioctl (~5 us when nested). */
	if (vcpu->vm->kvm->sync_regs && (vcpu->run->kvm_valid_regs & KVM_SYNC_X86_SREGS))
		sr = vcpu->run->s.regs.sregs;
	else if (ioctl(vcpu->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	unsigned dpl = b->cpl0 ? 0 : 3;
	sr.cs = seg(b->cpl0 ? WISP_SEL_KCODE : WISP_SEL_UCODE, 11, true, dpl);
	sr.ss = seg(b->cpl0 ? WISP_SEL_KDATA : WISP_SEL_UDATA, 3, false, dpl);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss;
	sr.tr = (struct kvm_segment){.base = TSS_GPA,
				     .limit = TSS_LIMIT,
				     .selector = WISP_SEL_TSS,
				     .type = 11 /* busy 64-bit TSS */,
				     .present = 1};
	sr.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
	sr.gdt = (struct kvm_dtable){.base = WISP_GDT_GPA, .limit = GDT_ENTRIES * 8 - 1};
	sr.idt = (struct kvm_dtable){.base = WISP_IDT_GPA, .limit = WISP_NR_TRAPS * 16 - 1};
	sr.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sr.cr3 = WISP_PML4_GPA;
	sr.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sr.efer = EFER_LME | EFER_LMA;

	struct kvm_regs regs = {.rip = b->entry,
				.rsp = b->stack_top,
				.rdi = b->arg0,
				.rflags = RFLAGS_RESERVED | RFLAGS_IOPL3};
	if (vcpu->vm->kvm->sync_regs) {
		vcpu->run->s.regs.regs = regs;
		vcpu->run->s.regs.sregs = sr;
		vcpu->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		return 0;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sr) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
