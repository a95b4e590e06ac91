/* The Wisp unikernel ABI: what a guest image and the VMM agree on.
 *
 * Shared, unchanged, by the VMM (src/) and the unikernel runtime
 * (guest/unikernel/). Plain C with fixed-size types so that both sides can
 * include it; docs/unikernel-abi.md is the prose version. */
#ifndef WISP_ABI_H
#define WISP_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

/* --- The image note --------------------------------------------------------
 * A Wisp unikernel is an ELF64 executable carrying one PT_NOTE entry named
 * "Wisp" of type WISP_NOTE_TYPE whose descriptor is a struct wisp_note. The
 * VMM loads PT_LOAD segments at their physical addresses (p_paddr), builds the
 * boot structures below 1 MiB and starts the vCPU in 64-bit mode at `entry`,
 * at CPL3 unless WISP_NOTE_CPL0 is set. */
#define WISP_NOTE_NAME	 "Wisp"
#define WISP_NOTE_TYPE	 0x57490001u
#define WISP_ABI_VERSION 1u

#define WISP_NOTE_CPL0 (1u << 0) /* run the application at CPL0 */

#define WISP_NR_TRAPS 32 /* exception vectors the runtime catches */

#ifndef __ASSEMBLER__
struct wisp_note {
	uint32_t abi_version; /* WISP_ABI_VERSION */
	uint32_t flags;	      /* WISP_NOTE_* */
	uint64_t entry;	      /* 64-bit entry: rdi = boot info GPA */
	uint64_t trap_table;  /* GPA of WISP_NR_TRAPS uint64_t handler addresses */
};
#endif

/* --- Guest-physical layout ---------------------------------------------------
 * Everything below WISP_IMAGE_MIN belongs to the VMM; image segments must lie
 * in [WISP_IMAGE_MIN, memory size). Page 0 is left unmapped so that a null
 * pointer dereference faults. */
#define WISP_GDT_GPA	   0x1000u   /* GDT */
#define WISP_IDT_GPA	   0x2000u   /* IDT: WISP_NR_TRAPS gates */
#define WISP_BOOTINFO_GPA  0x3000u   /* struct wisp_boot_info, then cmdline */
#define WISP_IST_TOP	   0x5000u   /* #DF/NMI stack: [0x4000, 0x5000) */
#define WISP_RSP0_TOP	   0x7000u   /* fault stack: [0x5000, 0x7000) */
#define WISP_PML4_GPA	   0x8000u   /* PML4, PDPT, the 4 KiB table, PDs */
#define WISP_TSS_GPA	   0x90000u  /* TSS + an I/O bitmap granting every port */
#define WISP_IMAGE_MIN	   0x100000u /* lowest address an image may use */
#define WISP_BOOTINFO_SIZE 0x1000u   /* boot info + command line */

/* GDT selectors the VMM sets up (the runtime's own PVH path uses the same). */
#define WISP_SEL_KCODE 0x08
#define WISP_SEL_KDATA 0x10
#define WISP_SEL_UDATA 0x1b /* 0x18 | RPL 3 */
#define WISP_SEL_UCODE 0x23 /* 0x20 | RPL 3 */
#define WISP_SEL_TSS   0x28

/* --- Boot info ---------------------------------------------------------------
 * At WISP_BOOTINFO_GPA, readable by the application. The command line is a
 * NUL-terminated string inside the same page. */
#define WISP_BOOT_MAGIC 0x50534957u /* "WISP" */

#ifndef __ASSEMBLER__
struct wisp_boot_info {
	uint32_t magic;	       /* WISP_BOOT_MAGIC */
	uint32_t abi_version;  /* WISP_ABI_VERSION */
	uint64_t mem_size;     /* bytes of RAM from GPA 0 */
	uint64_t image_end;    /* first byte after the highest loaded segment */
	uint64_t cmdline;      /* GPA of the NUL-terminated command line */
	uint64_t cmdline_size; /* bytes available at `cmdline`, NUL included */
	uint64_t tsc_khz;      /* guest TSC frequency, 0 when unknown */
	uint64_t devices;      /* GPA of a struct wisp_device table, 0 when none */
	uint32_t nr_devices;   /* entries in the device table */
	uint32_t reserved;
};

/* The device table: one entry per device the VMM attached, in the boot info
 * page at WISP_BOOTINFO_DEVICES (so at most WISP_MAX_DEVICES). A virtio-mmio
 * device has its virtio 1.x registers at `base`; when the device has used
 * buffers for the driver, bit `event` is set in wisp_hc_poll.events (and a
 * vCPU sleeping in POLL wakes up). */
#define WISP_DEV_VIRTIO_MMIO  1u
#define WISP_BOOTINFO_DEVICES 128u /* offset of the table in the boot info page */
#define WISP_MAX_DEVICES      8u

struct wisp_device {
	uint64_t base;	   /* GPA of the device's registers */
	uint32_t size;	   /* bytes of register space */
	uint16_t type;	   /* WISP_DEV_* */
	uint8_t event;	   /* bit in wisp_hc_poll.events */
	uint8_t virtio_id; /* virtio device ID (1 net, 2 blk, 3 console, 4 rng, 19 vsock) */
};
#endif

/* --- Hypercalls ------------------------------------------------------------
 * A hypercall is a 32-bit `out` to port WISP_HC_BASE + number. For calls that
 * take arguments the value written is the GPA (below 4 GiB) of an argument
 * struct, which the VMM reads and may write back; WISP_HC_EXIT takes the exit
 * status itself. One hypercall costs one VM exit. Numbers are never reused. */
#define WISP_HC_BASE  0x0600u
#define WISP_HC_COUNT 16u /* ports reserved; 4-byte writes make 0..12 usable */

#define WISP_HC_CONSOLE 0 /* struct wisp_hc_console */
#define WISP_HC_EXIT	1 /* value = exit status (0..255) */
#define WISP_HC_TIME	2 /* struct wisp_hc_time, filled by the VMM */
#define WISP_HC_FAULT	3 /* struct wisp_hc_fault: the guest crashed */
#define WISP_HC_POLL	4 /* struct wisp_hc_poll: sleep until an event */

#ifndef __ASSEMBLER__
struct wisp_hc_console {
	uint64_t buf; /* GPA of the bytes */
	uint64_t len; /* at most WISP_CONSOLE_MAX per call */
	int64_t ret;  /* out: bytes written, or -errno */
};
#define WISP_CONSOLE_MAX 65536u

struct wisp_hc_time {
	uint64_t monotonic_ns; /* out: CLOCK_MONOTONIC of the host */
	uint64_t wall_ns;      /* out: CLOCK_REALTIME, ns since the epoch */
};

struct wisp_hc_fault {
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t ss;
	uint64_t cr2;
};

struct wisp_hc_poll {
	uint64_t timeout_ns; /* in: UINT64_MAX waits for ever */
	uint64_t events;     /* out: bitmask of ready devices (wisp_device.event),
				0 on timeout; returns at once if one is pending */
};
#endif

/* Fallback devices when no boot info is present (e.g. QEMU microvm + PVH). */
#define WISP_COM1_PORT	     0x3f8
#define WISP_DEBUG_EXIT_PORT 0xf4

#endif
