/* Booting a Wisp unikernel: load the ELF, write the boot info page, build
 * the 64-bit environment and aim vCPU 0 at the entry point. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define CMDLINE_OFFSET 256 /* command line follows the boot info struct */

int x86_unikernel_set_devices(struct vm *vm, const struct wisp_device *devs, uint32_t n)
{
	_Static_assert(sizeof(struct wisp_boot_info) <= WISP_BOOTINFO_DEVICES &&
			       WISP_BOOTINFO_DEVICES +
					       WISP_MAX_DEVICES * sizeof(struct wisp_device) <=
				       CMDLINE_OFFSET,
		       "device table overlaps the boot info or the command line");
	if (n > WISP_MAX_DEVICES)
		return -E2BIG;
	uint8_t *page = gmem_ptr(&vm->mem, WISP_BOOTINFO_GPA, WISP_BOOTINFO_SIZE);
	if (!page)
		return -EFAULT;
	struct wisp_boot_info bi;
	memcpy(&bi, page, sizeof(bi));
	bi.devices = n ? WISP_BOOTINFO_GPA + WISP_BOOTINFO_DEVICES : 0;
	bi.nr_devices = n;
	memcpy(page + WISP_BOOTINFO_DEVICES, devs, n * sizeof(*devs));
	memcpy(page, &bi, sizeof(bi));
	return 0;
}

int x86_check_unikernel(const uint8_t *buf, size_t size, struct elf_image *img, char *err,
			size_t errlen)
{
	int r = elf_parse(buf, size, img, err, errlen);
	if (r)
		return r;
	if (!img->has_wisp_note) {
		snprintf(err, errlen, "ELF has no Wisp note: not a Wisp unikernel");
		return -ENOEXEC;
	}
	if (img->wisp.abi_version != WISP_ABI_VERSION) {
		snprintf(err, errlen, "unikernel built for Wisp ABI %u, this Wisp speaks %u",
			 img->wisp.abi_version, WISP_ABI_VERSION);
		return -ENOEXEC;
	}
	return 0;
}

int x86_boot_unikernel(struct vm *vm, const uint8_t *buf, size_t size, const char *cmdline,
		       char *err, size_t errlen)
{
	_Static_assert(sizeof(struct wisp_boot_info) <= CMDLINE_OFFSET, "boot info too large");
	struct elf_image img;
	int r = x86_check_unikernel(buf, size, &img, err, errlen);
	if (r)
		return r;
	uint64_t low_top = vm->mem.regions[0].size; /* RAM below the MMIO hole */
	if (img.highest > low_top || size > vm->mem.size) {
		snprintf(err, errlen, "image needs %llu KiB of memory but --mem gives %llu KiB",
			 (unsigned long long)((img.highest > size ? img.highest : size) >> 10),
			 (unsigned long long)(vm->mem.size >> 10));
		return -E2BIG;
	}
	r = elf_load(&img, buf, &vm->mem, WISP_IMAGE_MIN, err, errlen);
	if (r)
		return r;
	if (low_top - img.highest < X86_MIN_STACK) {
		snprintf(err, errlen,
			 "image leaves less than %u KiB for the stack; try a larger --mem",
			 X86_MIN_STACK >> 10);
		return -E2BIG;
	}
	size_t cl = strlen(cmdline);
	if (cl + 1 > WISP_BOOTINFO_SIZE - CMDLINE_OFFSET) {
		snprintf(err, errlen, "command line too long (%zu bytes, at most %u)", cl,
			 WISP_BOOTINFO_SIZE - CMDLINE_OFFSET - 1);
		return -E2BIG;
	}
	long khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	struct wisp_boot_info bi = {
		.magic = WISP_BOOT_MAGIC,
		.abi_version = WISP_ABI_VERSION,
		.mem_size = vm->mem.size,
		.image_end = img.highest,
		.cmdline = WISP_BOOTINFO_GPA + CMDLINE_OFFSET,
		.cmdline_size = WISP_BOOTINFO_SIZE - CMDLINE_OFFSET,
		.tsc_khz = khz > 0 ? (uint64_t)khz : 0,
	};
	uint8_t *page = gmem_ptr(&vm->mem, WISP_BOOTINFO_GPA, WISP_BOOTINFO_SIZE);
	if (!page) {
		snprintf(err, errlen, "guest memory too small for the boot info");
		return -E2BIG;
	}
	memset(page, 0, WISP_BOOTINFO_SIZE);
	memcpy(page, &bi, sizeof(bi));
	memcpy(page + CMDLINE_OFFSET, cmdline, cl + 1);

	if (img.wisp.trap_table && !gmem_ptr(&vm->mem, img.wisp.trap_table, WISP_NR_TRAPS * 8)) {
		snprintf(err, errlen, "trap table at 0x%llx lies outside the image",
			 (unsigned long long)img.wisp.trap_table);
		return -ENOEXEC;
	}
	struct x86_boot64 b = {
		.entry = img.wisp.entry,
		.stack_top = low_top & ~15ull,
		.arg0 = WISP_BOOTINFO_GPA,
		.trap_table = img.wisp.trap_table,
		.cpl0 = img.wisp.flags & WISP_NOTE_CPL0,
		.guard = (img.highest + 0xfff) & ~0xfffull,
	};
	uint64_t map = vm->mem.size > X86_MMIO_HOLE_START
			       ? vm->mem.size + (X86_MMIO_HOLE_END - X86_MMIO_HOLE_START)
			       : X86_MMIO_HOLE_END;
	r = x86_setup_unikernel(&vm->mem, &b, map);
	if (r) {
		snprintf(err, errlen, "cannot build boot structures: %s", strerror(-r));
		return r;
	}
	r = x86_vcpu_enter64(&vm->vcpus[0], &b);
	if (r)
		snprintf(err, errlen, "cannot set vCPU registers: %s", strerror(-r));
	return r;
}
