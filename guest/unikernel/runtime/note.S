/* The image notes: Wisp's (entry, trap table, flags) and Xen's PVH entry,
 * which QEMU uses for -kernel. Built twice: once as is and once with
 * -DWISP_FLAGS=WISP_NOTE_CPL0 for the CPL0 variant of an app. */
#include <wisp/abi.h>

#ifndef WISP_FLAGS
#define WISP_FLAGS 0
#endif

	.section .note.wisp, "a"
	.balign 4
	.long 5			/* namesz: "Wisp\0" */
	.long 24		/* descsz: struct wisp_note */
	.long WISP_NOTE_TYPE
	.asciz "Wisp"
	.balign 4
	.long WISP_ABI_VERSION
	.long WISP_FLAGS
	.quad _wisp_start
	.quad rt_trap_table
	.balign 4

	.section .note.pvh, "a"
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long _pvh_start
	.balign 4

	.section .rodata
	.globl rt_note_flags
	.balign 4
rt_note_flags:
	.long WISP_FLAGS
