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

/* --- paging.c ---------------------------------------------------------- */
/* Identity-map [0, map_size) at pml4_gpa: 4 KiB pages for the first 2 MiB
 * with page 0 not present, 2 MiB pages above; every page user-accessible,
 * writable and executable. Returns the first GPA after the tables or -errno. */
int64_t x86_build_page_tables(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t map_size,
			      uint64_t limit_gpa);
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
};

/* Write GDT, TSS, IDT and page tables for a unikernel into guest memory. */
int x86_setup_unikernel(const struct guest_mem *mem, const struct x86_boot64 *b, uint64_t map_size);
/* Put vCPU into 64-bit mode at b->entry (via sync regs or SET_[S]REGS). */
int x86_vcpu_enter64(struct vcpu *vcpu, const struct x86_boot64 *b);

/* --- unikernel.c ------------------------------------------------------- */
struct vm;
/* Minimum room left between the image and the top of RAM for the stack. */
#define X86_MIN_STACK (64u << 10)

/* Load a Wisp unikernel ELF (already read into buf) into vm, write its boot
 * info with `cmdline`, and point vCPU 0 at its entry. */
int x86_boot_unikernel(struct vm *vm, const uint8_t *buf, size_t size, const char *cmdline,
		       char *err, size_t errlen);
/* Publish the device table in the boot info page written by
 * x86_boot_unikernel (at most WISP_MAX_DEVICES entries). */
int x86_unikernel_set_devices(struct vm *vm, const struct wisp_device *devs, uint32_t n);

#endif
