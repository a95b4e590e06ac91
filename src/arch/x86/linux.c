/* Booting Linux: a bzImage through the 64-bit boot protocol
 * (Documentation/x86/boot.rst: zero page, e820 map, entry at load + 0x200 in
 * long mode) or an uncompressed vmlinux through its Xen PVH entry (32-bit
 * protected mode, hvm_start_info in %ebx). Both skip the real-mode setup code
 * and any firmware: the VMM writes what a BIOS would have left behind (memory
 * map, MP table) and starts the kernel directly.
 *
 * The kernel file is untrusted input: every header field is checked against
 * the file and against guest RAM before anything is copied. */
#include <asm/bootparam.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define BZ_BOOT_FLAG	 0xaa55
#define BZ_HDRS		 0x53726448u /* "HdrS" */
#define BZ_SETUP_OFFSET	 0x1f1	     /* struct setup_header inside the zero page */
#define BZ_ENTRY64	 0x200	     /* 64-bit entry: load address + 0x200 */
#define BZ_LOADER_OTHER	 0xff	     /* type_of_loader: "undefined" boot loader */
#define BZ_DEFAULT_SECTS 4	     /* setup_sects == 0 means 4 */

/* The PVH start of day (Xen public ABI, arch-x86/hvm/start_info.h). */
#define PVH_MAGIC 0x336ec578u
struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr; /* version 1: without a memmap a non-Xen guest BUG()s */
	uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
#define PVH_MODLIST_GPA (LINUX_START_INFO_GPA + 0x40)
#define PVH_MEMMAP_GPA	(LINUX_START_INFO_GPA + 0x80)
_Static_assert(sizeof(struct hvm_start_info) <= 0x40, "start info overlaps the module list");
_Static_assert(PVH_MEMMAP_GPA + X86_E820_MAX * sizeof(struct hvm_memmap_entry) <=
		       LINUX_ZERO_PAGE_GPA,
	       "PVH memmap overlaps the zero page");

#define GDT_CODE64 0x00af9a000000ffffull /* 0x10: 64-bit code, DPL0 */
#define GDT_CODE32 0x00cf9a000000ffffull /* 0x10: 32-bit flat code, DPL0 */
#define GDT_DATA   0x00cf92000000ffffull /* 0x18: flat data */
#define SEL_CODE   0x10			 /* __BOOT_CS */
#define SEL_DATA   0x18			 /* __BOOT_DS */

#define CR0_PE	 0x1ull
#define CR0_ET	 0x10ull
#define CR0_PG	 0x80000000ull
#define CR4_PAE	 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int parse_pvh(const uint8_t *buf, size_t size, struct linux_image *li, char *err,
		     size_t errlen)
{
	int r = elf_parse(buf, size, &li->elf, err, errlen);
	if (r)
		return r;
	if (!li->elf.has_pvh_note) {
		snprintf(err, errlen,
			 "ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): build the "
			 "kernel with CONFIG_PVH=y, or boot its bzImage");
		return -ENOEXEC;
	}
	if (li->elf.lowest < LINUX_HIGH_GPA) {
		snprintf(err, errlen, "kernel segment at 0x%llx lies below 1 MiB",
			 (unsigned long long)li->elf.lowest);
		return -ENOEXEC;
	}
	/* The entry must be 32-bit code inside what we load. */
	bool inside = false;
	for (int i = 0; i < li->elf.nr_segments; i++) {
		const struct elf_segment *s = &li->elf.seg[i];
		if (li->elf.pvh_entry >= s->paddr && li->elf.pvh_entry - s->paddr < s->filesz)
			inside = true;
	}
	if (!inside || li->elf.pvh_entry >= X86_MMIO_HOLE_START) {
		snprintf(err, errlen, "PVH entry 0x%llx lies outside the kernel's segments",
			 (unsigned long long)li->elf.pvh_entry);
		return -ENOEXEC;
	}
	li->kind = LINUX_PVH;
	li->cmdline_size = LINUX_CMDLINE_MAX - 1;
	li->initrd_addr_max = 0xffffffffu;
	li->kernel_end = li->elf.highest;
	return 0;
}

static int parse_bzimage(const uint8_t *buf, size_t size, struct linux_image *li, char *err,
			 size_t errlen)
{
	struct setup_header h;
	if (size < BZ_SETUP_OFFSET + sizeof(h)) {
		snprintf(err, errlen,
			 "not a Linux kernel: neither an ELF vmlinux nor a bzImage "
			 "(file too small)");
		return -ENOEXEC;
	}
	memcpy(&h, buf + BZ_SETUP_OFFSET, sizeof(h));
	if (h.boot_flag != BZ_BOOT_FLAG || h.header != BZ_HDRS) {
		snprintf(err, errlen,
			 "not a Linux kernel: neither an ELF vmlinux nor a bzImage "
			 "(no boot signature)");
		return -ENOEXEC;
	}
	if (h.version < LINUX_MIN_PROTOCOL) {
		snprintf(err, errlen,
			 "bzImage boot protocol %u.%02u is too old: Wisp needs 2.12 or later "
			 "(Linux 3.8+)",
			 h.version >> 8, h.version & 0xff);
		return -ENOEXEC;
	}
	if (!(h.loadflags & LOADED_HIGH)) {
		snprintf(err, errlen, "zImage kernels (loaded below 1 MiB) are not supported");
		return -ENOEXEC;
	}
	if (!(h.xloadflags & XLF_KERNEL_64)) {
		snprintf(err, errlen, "bzImage has no 64-bit entry point (a 32-bit kernel?)");
		return -ENOEXEC;
	}
	size_t sects = h.setup_sects ? h.setup_sects : BZ_DEFAULT_SECTS;
	li->setup_size = (sects + 1) * 512;
	if (li->setup_size >= size) {
		snprintf(err, errlen, "bzImage truncated: setup code (%zu bytes) fills the file",
			 li->setup_size);
		return -ENOEXEC;
	}
	if (h.pref_address < LINUX_HIGH_GPA || h.pref_address >= X86_MMIO_HOLE_START ||
	    h.init_size == 0) {
		snprintf(err, errlen, "bzImage header: bad load address 0x%llx or size %u",
			 (unsigned long long)h.pref_address, h.init_size);
		return -ENOEXEC;
	}
	li->kind = LINUX_BZIMAGE;
	li->protocol = h.version;
	li->pref_address = h.pref_address;
	li->init_size = h.init_size;
	li->initrd_addr_max = h.initrd_addr_max;
	li->cmdline_size = h.cmdline_size;
	/* The protected-mode code is loaded at 1 MiB; the decompressor moves
	 * itself and unpacks the kernel into [pref_address, + init_size). */
	uint64_t loaded_end = LINUX_HIGH_GPA + (size - li->setup_size);
	uint64_t run_end = h.pref_address + h.init_size;
	li->kernel_end = loaded_end > run_end ? loaded_end : run_end;
	return 0;
}

int linux_parse_kernel(const uint8_t *buf, size_t size, struct linux_image *li, char *err,
		       size_t errlen)
{
	memset(li, 0, sizeof(*li));
	li->buf = buf;
	li->size = size;
	if (size >= 4 && !memcmp(buf, "\177ELF", 4))
		return parse_pvh(buf, size, li, err, errlen);
	return parse_bzimage(buf, size, li, err, errlen);
}

int x86_e820_map(const struct guest_mem *mem, struct x86_e820 out[X86_E820_MAX])
{
	int n = 0;
	uint64_t low = mem->regions[0].size; /* region 0 starts at GPA 0 */
	out[n++] = (struct x86_e820){0, low < LINUX_MPTABLE_GPA ? low : LINUX_MPTABLE_GPA,
				     X86_E820_RAM};
	out[n++] = (struct x86_e820){LINUX_MPTABLE_GPA, LINUX_EBDA_END - LINUX_MPTABLE_GPA,
				     X86_E820_RESERVED};
	out[n++] = (struct x86_e820){LINUX_BIOS_GPA, LINUX_HIGH_GPA - LINUX_BIOS_GPA,
				     X86_E820_RESERVED};
	if (low > LINUX_HIGH_GPA)
		out[n++] = (struct x86_e820){LINUX_HIGH_GPA, low - LINUX_HIGH_GPA, X86_E820_RAM};
	for (int i = 1; i < mem->nr_regions && n < X86_E820_MAX; i++)
		out[n++] =
			(struct x86_e820){mem->regions[i].gpa, mem->regions[i].size, X86_E820_RAM};
	return n;
}

static void write_gdt(const struct guest_mem *mem, uint64_t code)
{
	uint64_t gdt[4] = {0, 0, code, GDT_DATA};
	gmem_write(mem, LINUX_GDT_GPA, gdt, sizeof(gdt));
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool long_mode)
{
	return (struct kvm_segment){.base = 0,
				    .limit = 0xffffffff,
				    .selector = sel,
				    .type = type,
				    .present = 1,
				    .s = 1,
				    .db = long_mode && type >= 8 ? 0 : 1,
				    .l = long_mode && type >= 8 ? 1 : 0,
				    .g = 1};
}

/* Registers at the kernel's entry: long mode with our identity map for a
 * bzImage, flat 32-bit protected mode without paging for PVH. */
static int set_entry_regs(struct vcpu *v, bool long_mode, uint64_t rip, uint64_t arg)
{
	struct kvm_sregs sr;
	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	sr.cs = flat_seg(SEL_CODE, 11, long_mode);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = flat_seg(SEL_DATA, 3, long_mode);
	sr.tr = (struct kvm_segment){.limit = 0x67, .type = 11, .present = 1};
	sr.ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
	sr.gdt = (struct kvm_dtable){.base = LINUX_GDT_GPA, .limit = 4 * 8 - 1};
	sr.idt = (struct kvm_dtable){0};
	sr.cr0 = CR0_PE | CR0_ET | (long_mode ? CR0_PG : 0);
	sr.cr3 = long_mode ? LINUX_PML4_GPA : 0;
	sr.cr4 = long_mode ? CR4_PAE : 0;
	sr.efer = long_mode ? EFER_LME | EFER_LMA : 0;
	struct kvm_regs regs = {.rip = rip, .rflags = 0x2};
	if (long_mode)
		regs.rsi = arg; /* struct boot_params */
	else
		regs.rbx = arg; /* struct hvm_start_info */
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static int boot_bzimage(struct vm *vm, const struct linux_image *li, uint64_t initrd_gpa,
			size_t initrd_size, const struct x86_e820 *map, int nr_map, char *err,
			size_t errlen)
{
	struct boot_params *bp = gmem_ptr(&vm->mem, LINUX_ZERO_PAGE_GPA, sizeof(*bp));
	size_t pm_size = li->size - li->setup_size;
	uint8_t *dst = gmem_ptr(&vm->mem, LINUX_HIGH_GPA, pm_size);
	if (!bp || !dst) {
		snprintf(err, errlen, "kernel of %zu KiB does not fit in %llu MiB of memory",
			 li->size >> 10, (unsigned long long)(vm->mem.size >> 20));
		return -E2BIG;
	}
	memset(bp, 0, sizeof(*bp));
	/* Copy the setup header as the kernel wrote it: it ends at 0x202 plus
	 * the byte at 0x201 (the jump over it), bounded by the zero page. */
	size_t hdr_end = 0x202 + (size_t)li->buf[0x201];
	if (hdr_end > offsetof(struct boot_params, hdr) + sizeof(bp->hdr))
		hdr_end = offsetof(struct boot_params, hdr) + sizeof(bp->hdr);
	memcpy((uint8_t *)bp + BZ_SETUP_OFFSET, li->buf + BZ_SETUP_OFFSET,
	       hdr_end - BZ_SETUP_OFFSET);
	bp->hdr.type_of_loader = BZ_LOADER_OTHER;
	bp->hdr.cmd_line_ptr = (uint32_t)LINUX_CMDLINE_GPA;
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	bp->hdr.vid_mode = 0xffff; /* "normal": no video mode to set */
	for (int i = 0; i < nr_map; i++)
		bp->e820_table[i] = (struct boot_e820_entry){map[i].addr, map[i].size, map[i].type};
	bp->e820_entries = (uint8_t)nr_map;
	memcpy(dst, li->buf + li->setup_size, pm_size);

	write_gdt(&vm->mem, GDT_CODE64);
	/* Identity-map the first 4 GiB: kernel, zero page, command line and
	 * initrd all lie below; the kernel replaces these tables early on. */
	int64_t r = x86_build_page_tables(&vm->mem, LINUX_PML4_GPA, X86_MMIO_HOLE_END,
					  LINUX_CMDLINE_GPA);
	if (r < 0) {
		snprintf(err, errlen, "cannot build page tables: %s", strerror((int)-r));
		return (int)r;
	}
	return set_entry_regs(&vm->vcpus[0], true, LINUX_HIGH_GPA + BZ_ENTRY64,
			      LINUX_ZERO_PAGE_GPA);
}

static int boot_pvh(struct vm *vm, const struct linux_image *li, uint64_t initrd_gpa,
		    size_t initrd_size, const struct x86_e820 *map, int nr_map, char *err,
		    size_t errlen)
{
	int r = elf_load(&li->elf, li->buf, &vm->mem, LINUX_HIGH_GPA, err, errlen);
	if (r)
		return r;
	struct hvm_start_info si = {
		.magic = PVH_MAGIC,
		.version = 1,
		.nr_modules = initrd_size ? 1 : 0,
		.modlist_paddr = initrd_size ? PVH_MODLIST_GPA : 0,
		.cmdline_paddr = LINUX_CMDLINE_GPA,
		.memmap_paddr = PVH_MEMMAP_GPA,
		.memmap_entries = (uint32_t)nr_map,
	};
	struct hvm_modlist_entry mod = {.paddr = initrd_gpa, .size = initrd_size};
	struct hvm_memmap_entry mm[X86_E820_MAX];
	for (int i = 0; i < nr_map; i++)
		mm[i] = (struct hvm_memmap_entry){map[i].addr, map[i].size, map[i].type, 0};
	if (gmem_write(&vm->mem, LINUX_START_INFO_GPA, &si, sizeof(si)) ||
	    gmem_write(&vm->mem, PVH_MODLIST_GPA, &mod, sizeof(mod)) ||
	    gmem_write(&vm->mem, PVH_MEMMAP_GPA, mm, (size_t)nr_map * sizeof(mm[0]))) {
		snprintf(err, errlen, "guest memory too small for the PVH start info");
		return -E2BIG;
	}
	write_gdt(&vm->mem, GDT_CODE32);
	return set_entry_regs(&vm->vcpus[0], false, li->elf.pvh_entry, LINUX_START_INFO_GPA);
}

int linux_plan_boot(const struct linux_image *li, uint64_t mem_size, size_t initrd_size,
		    size_t cmdline_len, int nr_cpus, struct linux_plan *plan, char *err,
		    size_t errlen)
{
	struct x86_ram ram[2];
	x86_ram_layout(mem_size, ram);
	uint64_t low_top = ram[0].size; /* RAM from 0 to the MMIO hole */
	memset(plan, 0, sizeof(*plan));
	if (li->kernel_end > low_top) {
		snprintf(err, errlen,
			 "kernel needs %llu MiB of memory to unpack and run but --mem gives %llu "
			 "MiB",
			 (unsigned long long)((li->kernel_end + (1 << 20) - 1) >> 20),
			 (unsigned long long)(mem_size >> 20));
		return -E2BIG;
	}
	if (cmdline_len > li->cmdline_size ||
	    cmdline_len + 1 > LINUX_MPTABLE_GPA - LINUX_CMDLINE_GPA) {
		snprintf(err, errlen, "command line too long (%zu bytes; this kernel takes %u)",
			 cmdline_len, li->cmdline_size);
		return -E2BIG;
	}
	if (x86_mptable_size(nr_cpus) > LINUX_HIGH_GPA - LINUX_BIOS_GPA || nr_cpus > 254) {
		snprintf(err, errlen, "%d vCPUs do not fit in an MP table", nr_cpus);
		return -E2BIG;
	}
	if (!initrd_size)
		return 0;
	/* The initrd goes as high as the kernel allows, page-aligned, above
	 * everything the kernel will unpack into. */
	uint64_t top = low_top;
	if ((uint64_t)li->initrd_addr_max + 1 < top)
		top = (uint64_t)li->initrd_addr_max + 1;
	uint64_t bottom = align_up(li->kernel_end, 4096);
	if (initrd_size > top || ((top - initrd_size) & ~4095ull) < bottom) {
		snprintf(err, errlen,
			 "initrd of %zu KiB does not fit in memory: the kernel ends at %llu MiB "
			 "and usable RAM at %llu MiB; try a larger --mem",
			 initrd_size >> 10, (unsigned long long)(bottom >> 20),
			 (unsigned long long)(top >> 20));
		return -E2BIG;
	}
	plan->initrd_gpa = (top - initrd_size) & ~4095ull;
	return 0;
}

int x86_boot_linux(struct vm *vm, const struct linux_image *li, const struct linux_boot *b,
		   char *err, size_t errlen)
{
	err[0] = 0;
	size_t cl = strlen(b->cmdline), isz = b->initrd ? b->initrd_size : 0;
	struct linux_plan plan;
	int r = linux_plan_boot(li, vm->mem.size, isz, cl, b->nr_cpus, &plan, err, errlen);
	if (r)
		return r;
	uint64_t initrd_gpa = plan.initrd_gpa;
	if (b->initrd && gmem_write(&vm->mem, initrd_gpa, b->initrd, b->initrd_size)) {
		snprintf(err, errlen, "initrd lies outside guest RAM");
		return -E2BIG;
	}
	if (gmem_write(&vm->mem, LINUX_CMDLINE_GPA, b->cmdline, cl + 1)) {
		snprintf(err, errlen, "guest memory too small for the command line");
		return -E2BIG;
	}

	uint32_t sig = 0, features = 0;
	const struct kvm_cpuid2 *c = vm->kvm->cpuid;
	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == 1) {
			sig = c->entries[i].eax;
			features = c->entries[i].edx;
		}
	r = x86_write_mptable(&vm->mem, b->nr_cpus, sig, features);
	if (r) {
		snprintf(err, errlen, "cannot write the MP table for %d vCPUs: %s", b->nr_cpus,
			 strerror(-r));
		return r;
	}
	struct x86_e820 map[X86_E820_MAX];
	int n = x86_e820_map(&vm->mem, map);
	if (li->kind == LINUX_BZIMAGE)
		r = boot_bzimage(vm, li, initrd_gpa, isz, map, n, err, errlen);
	else
		r = boot_pvh(vm, li, initrd_gpa, isz, map, n, err, errlen);
	if (r && !err[0])
		snprintf(err, errlen, "cannot set vCPU registers: %s", strerror(-r));
	return r;
}
