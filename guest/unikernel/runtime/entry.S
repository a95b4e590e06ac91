/* Entry points and exception stubs of the unikernel runtime.
 *
 * _wisp_start: Wisp starts the vCPU here directly in 64-bit mode, at CPL3
 *   (CPL0 for CPL0 builds), with GDT, TSS, IDT, page tables and stack set up
 *   by the VMM and rdi = the boot info page.
 * _pvh_start: the PVH entry (QEMU -kernel): 32-bit protected mode, paging
 *   off, ebx = hvm_start_info. It builds the same environment itself, in
 *   memory just past the image, then enters _wisp_start the same way. */
#include <wisp/abi.h>

#define MSR_EFER 0xc0000080

	.section .text.boot, "ax"
	.code64
	.globl _wisp_start
_wisp_start:
	xor %ebp, %ebp
	and $-16, %rsp
	call rt_start		/* rt_start(boot info, pvh start info); never returns */
1:	pause
	jmp 1b

	.code32
	.globl _pvh_start
_pvh_start:
	cli
	mov %ebx, %esi			/* keep the start info */
	lgdt pvh_gdt_desc
	/* Identity-map the first GiB with 2 MiB user pages. */
	mov $__pvh_pd, %edi
	mov $0x87, %eax			/* present, writable, user, 2 MiB */
	mov $512, %ecx
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	movl $__pvh_pd + 7, __pvh_pdpt
	movl $__pvh_pdpt + 7, __pvh_pml4
	mov $__pvh_pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x620, %eax			/* PAE, OSFXSR, OSXMMEXCPT */
	mov %eax, %cr4
	mov $MSR_EFER, %ecx
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov %cr0, %eax
	and $~0x4, %eax			/* EM off */
	or $0x80010023, %eax		/* PG, WP, NE, MP, PE */
	mov %eax, %cr0
	ljmp $WISP_SEL_KCODE, $pvh_long

	.code64
pvh_long:
	mov $WISP_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $__pvh_kstack_top, %esp
	mov %esi, %ebx			/* start info survives the call in rbx */
	call rt_pvh_setup		/* TSS, IDT */
	mov %rbx, %rsi
	xor %edi, %edi			/* no Wisp boot info */
	testl $WISP_NOTE_CPL0, rt_note_flags
	jnz 2f
	pushq $WISP_SEL_UDATA		/* ss */
	pushq $__pvh_ustack_top		/* rsp */
	pushq $0x3002			/* rflags: IOPL=3 */
	pushq $WISP_SEL_UCODE		/* cs */
	pushq $_wisp_start		/* rip */
	iretq
2:	mov $__pvh_ustack_top, %esp
	pushq $0x3002
	popfq
	jmp _wisp_start

/* Exception stubs: push a zero error code where the CPU does not, then the
 * vector, and hand the frame to rt_trap (CPL0 C code that reports and stops). */
	.macro TRAP n
	.balign 16
trap_\n:
	.if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushq $0
	.endif
	pushq $\n
	jmp trap_common
	.endm

	.altmacro
	.set i, 0
	.rept WISP_NR_TRAPS
	TRAP %i
	.set i, i + 1
	.endr

trap_common:
	mov %rsp, %rdi			/* struct rt_trap_frame * */
	and $-16, %rsp
	call rt_trap
3:	hlt
	jmp 3b

	.macro TRAP_ENTRY n
	.quad trap_\n
	.endm

	.section .rodata
	.balign 8
	.globl rt_trap_table
rt_trap_table:
	.set i, 0
	.rept WISP_NR_TRAPS
	TRAP_ENTRY %i
	.set i, i + 1
	.endr

	.section .data
	.balign 16
	.globl rt_pvh_gdt
rt_pvh_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* kernel data */
	.quad 0x00cff2000000ffff	/* user data, DPL3 */
	.quad 0x00affa000000ffff	/* user code, 64-bit, DPL3 */
	.quad 0, 0			/* TSS, filled by rt_pvh_setup */
pvh_gdt_desc:
	.word 7 * 8 - 1
	.long rt_pvh_gdt
