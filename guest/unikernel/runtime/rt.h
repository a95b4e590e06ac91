/* Runtime internals shared by its files (applications use wrt.h). */
#ifndef RT_H
#define RT_H

#include "wrt.h"

/* Status given to isa-debug-exit when the application faults under QEMU. */
#define RT_FAULT_STATUS 0x3f
/* The PVH path's TSS: header, then an I/O bitmap for all 65536 ports. */
#define RT_TSS_IOMAP 104
#define RT_TSS_LIMIT (RT_TSS_IOMAP + 8192)
/* QEMU's isa-debug-exit: iobase 0x501 by default, 0xf4 as commonly set. */
#define RT_DEBUG_EXIT_PORT_DEFAULT 0x501

/* Leave QEMU through isa-debug-exit at either usual port. */
static inline void rt_debug_exit(uint8_t status)
{
	outb(WISP_DEBUG_EXIT_PORT, status);
	outb(RT_DEBUG_EXIT_PORT_DEFAULT, status);
}

/* True once rt_start saw a valid Wisp boot info page. */
extern int rt_booted_by_wisp;
struct pvh_start_info;
/* C entry from entry.S: set up console and arguments, run main, exit. */
_Noreturn void rt_start(const struct wisp_boot_info *bi, const struct pvh_start_info *si);
/* PVH path only, at CPL0: build the TSS and IDT and load them. */
void rt_pvh_setup(void);
struct rt_trap_frame;
/* Exception handler (CPL0): report the fault and stop. */
_Noreturn void rt_trap(struct rt_trap_frame *f);
/* Write to COM1 directly (the fallback console). */
void rt_com1_write(const char *s, size_t len);

#endif
