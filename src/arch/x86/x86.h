/* The x86 layer: guest-physical layout, CPUID, 64-bit entry state and the
 * image loaders. Nothing here runs a vCPU; it only prepares one. */
#ifndef WISP_X86_H
#define WISP_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/abi.h>

struct guest_mem;
struct kvm_cpuid2;
struct vcpu;

/* RAM below the MMIO hole ends here; the rest is placed from 4 GiB up. */
#define X86_MMIO_HOLE_START 0xC0000000ull
#define X86_MMIO_HOLE_END   0x100000000ull
/* Page tables for unikernels map at least the first 4 GiB (RAM + MMIO hole). */
#define X86_MAX_MAPPED (128ull << 30)

/* A RAM range of the guest-physical map. */
struct x86_ram {
	uint64_t gpa, size, fd_offset;
};

/* Split mem_size bytes of RAM around the MMIO hole; returns the region count. */
int x86_ram_layout(uint64_t mem_size, struct x86_ram out[2]);

/* --- cpuid.c ----------------------------------------------------------- */
/* A CPUID table for vCPU `id` of `nr_vcpus`, derived from KVM's supported
 * table; caller frees. NULL on allocation failure. */
struct kvm_cpuid2 *x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, int id, int nr_vcpus);
/* Add what KVM emulates only with an in-kernel LAPIC and leaves userspace to
 * announce: the TSC-deadline timer. Without it Linux calibrates the LAPIC
 * timer against a PIT we do not have, fails, and is left with no timer. */
void x86_cpuid_add_irqchip_features(struct kvm_cpuid2 *c);

/* --- paging.c ---------------------------------------------------------- */
/* Identity-map [0, map_size) at pml4_gpa: 4 KiB pages for the first 2 MiB
 * with page 0 not present, 2 MiB pages above; every page user-accessible,
 * writable and executable. Returns the first GPA after the tables or -errno. */
int64_t x86_build_page_tables(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t map_size,
			      uint64_t limit_gpa);
/* Make the 4 KiB page at gpa supervisor-only, or (unmap) not present; a
 * 2 MiB page around it is split first into a table written at spare_pt_gpa
 * (0: none available, -ENOSPC). */
int x86_page_restrict(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t gpa, bool unmap,
		      uint64_t spare_pt_gpa);
/* Translate a guest-virtual address with the tables at pml4_gpa (tests,
 * crash reports); returns false if not mapped. */
bool x86_translate(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t va, uint64_t *pa,
		   bool *user, bool *writable);

/* --- elf.c ------------------------------------------------------------- */
#define ELF_MAX_SEGMENTS 16

/* A loadable segment, validated against the file. */
struct elf_segment {
	uint64_t paddr, memsz, offset, filesz;
};

/* What an ELF image is, once validated. */
struct elf_image {
	uint64_t entry;
	int nr_segments;
	struct elf_segment seg[ELF_MAX_SEGMENTS];
	uint64_t lowest, highest; /* [lowest, highest) covers every segment */
	bool has_wisp_note;
	struct wisp_note wisp;
	bool has_pvh_note;
	uint64_t pvh_entry; /* XEN_ELFNOTE_PHYS32_ENTRY */
};

/* Validate an ELF64 x86-64 executable held in buf; fills img. On error,
 * returns -ENOEXEC (or -EINVAL) and writes why into err. */
int elf_parse(const uint8_t *buf, size_t size, struct elf_image *img, char *err, size_t errlen);
/* Check that every segment lies in [min_gpa, RAM) and copy it in, zeroing
 * the bss part. */
int elf_load(const struct elf_image *img, const uint8_t *buf, const struct guest_mem *mem,
	     uint64_t min_gpa, char *err, size_t errlen);

/* --- boot64.c ---------------------------------------------------------- */
/* Everything a 64-bit unikernel needs before its first instruction. */
struct x86_boot64 {
	uint64_t entry;	     /* RIP */
	uint64_t stack_top;  /* RSP (16-byte aligned) */
	uint64_t arg0;	     /* RDI */
	uint64_t trap_table; /* GPA of the runtime's 32 handler addresses, 0 if none */
	bool cpl0;	     /* run at CPL0 instead of CPL3 */
	uint64_t guard;	     /* GPA of the stack guard page (not mapped), 0 if none */
};

/* Write GDT, TSS, IDT and page tables for a unikernel into guest memory. */
int x86_setup_unikernel(const struct guest_mem *mem, const struct x86_boot64 *b, uint64_t map_size);
/* Put vCPU into 64-bit mode at b->entry (via sync regs or SET_[S]REGS). */
int x86_vcpu_enter64(struct vcpu *vcpu, const struct x86_boot64 *b);

/* --- unikernel.c ------------------------------------------------------- */
struct vm;
/* Minimum room left between the image and the top of RAM for the stack. */
#define X86_MIN_STACK (64u << 10)

/* The one check that buf holds a Wisp unikernel: an ELF with a Wisp note
 * of this ABI. -ENOEXEC with why in err. */
int x86_check_unikernel(const uint8_t *buf, size_t size, struct elf_image *img, char *err,
			size_t errlen);
/* Load a Wisp unikernel ELF (already read into buf) into vm, write its boot
 * info with `cmdline`, and point vCPU 0 at its entry. */
int x86_boot_unikernel(struct vm *vm, const uint8_t *buf, size_t size, const char *cmdline,
		       char *err, size_t errlen);
/* Publish the device table in the boot info page written by
 * x86_boot_unikernel (at most WISP_MAX_DEVICES entries). */
int x86_unikernel_set_devices(struct vm *vm, const struct wisp_device *devs, uint32_t n);

/* --- linux.c ----------------------------------------------------------- */
/* Guest-physical layout of a Linux boot (everything below 1 MiB is ours
 * until the kernel has copied what it needs). */
#define LINUX_GDT_GPA	     0x1000ull	 /* boot GDT: 0x10 code, 0x18 data */
#define LINUX_START_INFO_GPA 0x6000ull	 /* PVH hvm_start_info, modlist, memmap */
#define LINUX_ZERO_PAGE_GPA  0x7000ull	 /* bzImage struct boot_params */
#define LINUX_PML4_GPA	     0x9000ull	 /* identity page tables for 64-bit entry */
#define LINUX_CMDLINE_GPA    0x20000ull	 /* kernel command line */
#define LINUX_MPTABLE_GPA    0x9fc00ull	 /* MP floating pointer + table (last KiB < 640K) */
#define LINUX_EBDA_END	     0xa0000ull	 /* end of conventional memory */
#define LINUX_BIOS_GPA	     0xf0000ull	 /* MP table when it outgrows the last KiB */
#define LINUX_HIGH_GPA	     0x100000ull /* first byte of extended memory */
#define LINUX_MIN_PROTOCOL   0x020c	 /* boot protocol 2.12: 64-bit entry, xloadflags */
#define LINUX_CMDLINE_MAX    2048u	 /* PVH: the kernel's COMMAND_LINE_SIZE on x86 */

/* Which entry protocol a kernel image uses. */
enum linux_kind {
	LINUX_BZIMAGE, /* bzImage: 64-bit boot protocol, zero page */
	LINUX_PVH,     /* vmlinux ELF with a Xen PVH entry note */
};

/* A validated Linux kernel image (checked before KVM is touched). */
struct linux_image {
	enum linux_kind kind;
	const uint8_t *buf;
	size_t size;
	/* bzImage */
	uint16_t protocol;	  /* setup header version, e.g. 0x020f */
	size_t setup_size;	  /* real-mode part: (setup_sects + 1) * 512 */
	uint64_t pref_address;	  /* where the kernel decompresses itself */
	uint32_t init_size;	  /* bytes it needs there */
	uint32_t initrd_addr_max; /* highest byte an initrd may occupy */
	uint32_t cmdline_size;	  /* longest command line, NUL excluded */
	/* PVH */
	struct elf_image elf;
	/* both: first byte above the running kernel, where an initrd may start */
	uint64_t kernel_end;
};

/* Boot inputs besides the kernel. */
struct linux_boot {
	const uint8_t *initrd; /* NULL when none */
	size_t initrd_size;
	const char *cmdline;
	int nr_cpus;
};

/* Recognise and validate a bzImage or PVH vmlinux held in buf. On error
 * returns -ENOEXEC and writes why into err (neither format, protocol too old,
 * truncated...). */
int linux_parse_kernel(const uint8_t *buf, size_t size, struct linux_image *li, char *err,
		       size_t errlen);
/* Where a boot puts what (decided before any guest memory exists). */
struct linux_plan {
	uint64_t initrd_gpa; /* 0 when there is no initrd */
};
/* Check that kernel, initrd and command line fit a VM of mem_size bytes and
 * nr_cpus vCPUs, and place the initrd; on error writes why into err. */
int linux_plan_boot(const struct linux_image *li, uint64_t mem_size, size_t initrd_size,
		    size_t cmdline_len, int nr_cpus, struct linux_plan *plan, char *err,
		    size_t errlen);
/* Load kernel, initrd and command line into vm, write the e820 map / PVH
 * memmap and the MP table, and aim vCPU 0 at the kernel's entry. The VM must
 * have its irqchip and every vCPU created. */
int x86_boot_linux(struct vm *vm, const struct linux_image *li, const struct linux_boot *b,
		   char *err, size_t errlen);
/* One memory-map entry, in e820 terms (type 1 RAM, 2 reserved). */
struct x86_e820 {
	uint64_t addr, size;
	uint32_t type;
};
#define X86_E820_RAM	  1
#define X86_E820_RESERVED 2
#define X86_E820_MAX	  8
/* The memory map a Linux guest of this VM sees; returns the entry count. */
int x86_e820_map(const struct guest_mem *mem, struct x86_e820 out[X86_E820_MAX]);

/* --- mptable.c --------------------------------------------------------- */
/* Write an Intel MP table (floating pointer + configuration table) listing
 * nr_cpus processors, the IOAPIC and the 16 ISA interrupts: at
 * LINUX_MPTABLE_GPA when it fits in the last KiB below 640 KiB, else at
 * LINUX_BIOS_GPA. cpu_signature/cpu_features: CPUID.1 EAX/EDX. */
int x86_write_mptable(const struct guest_mem *mem, int nr_cpus, uint32_t cpu_signature,
		      uint32_t cpu_features);
/* Bytes the MP table for nr_cpus processors takes (floating pointer included). */
size_t x86_mptable_size(int nr_cpus);

#endif
