/* Linux boot: the bzImage header and PVH note checks refuse every bad or
 * too-old kernel with a message, the boot plan refuses what does not fit
 * and places the initrd correctly, the e820 map covers RAM around the holes,
 * and the MP table is well formed (signatures, checksums, one CPU per vCPU). */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define BZ_SIZE 0x8000

/* A minimal bzImage: 4 setup sectors, then 11 KiB of "kernel". */
static void make_bzimage(uint8_t *buf)
{
	memset(buf, 0, BZ_SIZE);
	struct setup_header h = {0};
	h.setup_sects = 4;
	h.boot_flag = 0xaa55;
	h.jump = 0x66eb; /* jmp over a 0x66-byte header: ends at 0x268 */
	h.header = 0x53726448;
	h.version = 0x020f;
	h.loadflags = LOADED_HIGH;
	h.initrd_addr_max = 0x7fffffff;
	h.cmdline_size = 2047;
	h.xloadflags = XLF_KERNEL_64;
	h.pref_address = 0x1000000;
	h.init_size = 0x800000;
	memcpy(buf + 0x1f1, &h, sizeof(h));
	memset(buf + 5 * 512, 0x90, BZ_SIZE - 5 * 512);
}

static struct setup_header *hdr(uint8_t *buf)
{
	return (struct setup_header *)(buf + 0x1f1);
}

static void expect_refused(const uint8_t *buf, size_t size, const char *want)
{
	struct linux_image li;
	char err[WISP_ERRLEN] = "";
	assert_int_equal(linux_parse_kernel(buf, size, &li, err, sizeof(err)), -ENOEXEC);
	if (!strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
}

static void test_bzimage(void **state)
{
	static uint8_t buf[BZ_SIZE];
	struct linux_image li;
	char err[WISP_ERRLEN];
	make_bzimage(buf);
	assert_int_equal(linux_parse_kernel(buf, BZ_SIZE, &li, err, sizeof(err)), 0);
	assert_int_equal(li.kind, LINUX_BZIMAGE);
	assert_int_equal(li.setup_size, 5 * 512);
	assert_int_equal(li.kernel_end, 0x1800000);
	assert_int_equal(li.cmdline_size, 2047);

	make_bzimage(buf);
	hdr(buf)->version = 0x0201;
	expect_refused(buf, BZ_SIZE, "boot protocol 2.01 is too old");
	make_bzimage(buf);
	hdr(buf)->xloadflags = 0;
	expect_refused(buf, BZ_SIZE, "no 64-bit entry point");
	make_bzimage(buf);
	hdr(buf)->loadflags = 0;
	expect_refused(buf, BZ_SIZE, "zImage");
	make_bzimage(buf);
	hdr(buf)->header = 0;
	expect_refused(buf, BZ_SIZE, "neither an ELF vmlinux nor a bzImage");
	make_bzimage(buf);
	expect_refused(buf, 0x200, "neither an ELF vmlinux nor a bzImage");
	expect_refused(buf, 3, "neither");
	make_bzimage(buf);
	hdr(buf)->setup_sects = 200; /* setup code longer than the file */
	expect_refused(buf, BZ_SIZE, "truncated");
	make_bzimage(buf);
	hdr(buf)->pref_address = 0xfff00000; /* in the MMIO hole */
	expect_refused(buf, BZ_SIZE, "bad load address");
	make_bzimage(buf);
	hdr(buf)->init_size = 0;
	expect_refused(buf, BZ_SIZE, "bad load address");
	make_bzimage(buf);
	hdr(buf)->setup_sects = 0; /* means 4 */
	assert_int_equal(linux_parse_kernel(buf, BZ_SIZE, &li, err, sizeof(err)), 0);
	assert_int_equal(li.setup_size, 5 * 512);
	(void)state;
}

/* A PVH vmlinux: one PT_LOAD at 16 MiB and a PT_NOTE with the Xen entry. */
#define PVH_SIZE 0x3000
static void make_pvh(uint8_t *buf, uint32_t entry)
{
	memset(buf, 0, PVH_SIZE);
	Elf64_Ehdr *e = (Elf64_Ehdr *)buf;
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_phoff = 64;
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = 2;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + 64);
	ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
			     .p_offset = 0x1000,
			     .p_paddr = 0x1000000,
			     .p_filesz = 0x1000,
			     .p_memsz = 0x200000};
	uint8_t *n = buf + 0x2000;
	Elf64_Nhdr nh = {4, 4, 18}; /* "Xen", XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(n, &nh, sizeof(nh));
	memcpy(n + 12, "Xen", 4);
	memcpy(n + 16, &entry, 4);
	ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 0x2000, .p_filesz = 20};
}

static void test_pvh(void **state)
{
	static uint8_t buf[PVH_SIZE];
	struct linux_image li;
	char err[WISP_ERRLEN];
	make_pvh(buf, 0x1000400);
	assert_int_equal(linux_parse_kernel(buf, PVH_SIZE, &li, err, sizeof(err)), 0);
	assert_int_equal(li.kind, LINUX_PVH);
	assert_int_equal(li.elf.pvh_entry, 0x1000400);
	assert_int_equal(li.kernel_end, 0x1200000);

	make_pvh(buf, 0x3000000); /* entry outside the loaded bytes */
	expect_refused(buf, PVH_SIZE, "PVH entry 0x3000000 lies outside");
	make_pvh(buf, 0x1000400);
	memcpy(buf + 0x2000 + 12, "Xyz", 4); /* no Xen note */
	expect_refused(buf, PVH_SIZE, "no PVH entry note");
	make_pvh(buf, 0x1000400);
	((Elf64_Phdr *)(buf + 64))[0].p_paddr = 0x1000; /* below 1 MiB */
	expect_refused(buf, PVH_SIZE, "below 1 MiB");
	make_pvh(buf, 0x1000400);
	expect_refused(buf, 40, "truncated ELF"); /* the ELF checks still apply */
	(void)state;
}

static void test_plan(void **state)
{
	static uint8_t buf[BZ_SIZE];
	struct linux_image li;
	struct linux_plan plan;
	char err[WISP_ERRLEN] = "";
	make_bzimage(buf);
	assert_int_equal(linux_parse_kernel(buf, BZ_SIZE, &li, err, sizeof(err)), 0);
	/* 128 MiB: the initrd goes page-aligned at the top of RAM. */
	assert_int_equal(linux_plan_boot(&li, 128 << 20, 10000, 20, 1, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.initrd_gpa, ((128u << 20) - 10000) & ~4095u);
	/* Kernel does not fit. */
	assert_int_equal(linux_plan_boot(&li, 16 << 20, 0, 20, 1, &plan, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "kernel needs 24 MiB"));
	/* Initrd does not fit above the kernel (ends at 24 MiB). */
	assert_int_equal(linux_plan_boot(&li, 32 << 20, 9 << 20, 20, 1, &plan, err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "initrd of 9216 KiB does not fit"));
	assert_int_equal(linux_plan_boot(&li, 32 << 20, 7 << 20, 20, 1, &plan, err, sizeof(err)),
			 0);
	assert_true(plan.initrd_gpa >= 0x1800000);
	/* The kernel's initrd_addr_max bounds the placement, also above 3 GiB. */
	hdr(buf)->initrd_addr_max = 0x3fffffff;
	assert_int_equal(linux_parse_kernel(buf, BZ_SIZE, &li, err, sizeof(err)), 0);
	assert_int_equal(linux_plan_boot(&li, 8ull << 30, 4096, 20, 1, &plan, err, sizeof(err)), 0);
	assert_int_equal(plan.initrd_gpa, 0x40000000 - 4096);
	/* Command line longer than the kernel takes. */
	assert_int_equal(linux_plan_boot(&li, 128 << 20, 0, 2048, 1, &plan, err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "command line too long (2048 bytes; this kernel takes 2047)"));
	(void)state;
}

static void test_e820(void **state)
{
	struct guest_mem m;
	struct x86_e820 map[X86_E820_MAX];
	assert_int_equal(gmem_init(&m, 128 << 20), 0);
	assert_int_equal(gmem_add_region(&m, 0, 128 << 20, 0), 0);
	int n = x86_e820_map(&m, map);
	assert_int_equal(n, 4);
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, 0x9fc00);
	assert_int_equal(map[0].type, X86_E820_RAM);
	assert_int_equal(map[1].type, X86_E820_RESERVED); /* the MP table */
	assert_int_equal(map[3].addr, 0x100000);
	assert_int_equal(map[3].size, (128 << 20) - 0x100000);
	gmem_destroy(&m);

	/* 4 GiB: 3 GiB below the hole, 1 GiB from 4 GiB. */
	struct x86_ram ram[2];
	int nr = x86_ram_layout(4ull << 30, ram);
	assert_int_equal(gmem_init(&m, 4ull << 30), 0);
	for (int i = 0; i < nr; i++)
		assert_int_equal(gmem_add_region(&m, ram[i].gpa, ram[i].size, ram[i].fd_offset), 0);
	n = x86_e820_map(&m, map);
	assert_int_equal(n, 5);
	assert_int_equal(map[3].size, X86_MMIO_HOLE_START - 0x100000);
	assert_int_equal(map[4].addr, 1ull << 32);
	assert_int_equal(map[4].size, 1ull << 30);
	gmem_destroy(&m);
	(void)state;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static void check_mptable(struct guest_mem *m, uint64_t at, int cpus)
{
	const uint8_t *fp = gmem_ptr(m, at, 16);
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(sum(fp, 16), 0);
	uint32_t table;
	memcpy(&table, fp + 4, 4);
	const uint8_t *h = gmem_ptr(m, table, 44);
	assert_non_null(h);
	assert_memory_equal(h, "PCMP", 4);
	uint16_t len, count;
	memcpy(&len, h + 4, 2);
	memcpy(&count, h + 34, 2);
	assert_int_equal(sum(gmem_ptr(m, table, len), len), 0);
	assert_int_equal(count, cpus + 2 + 16 + 2); /* CPUs, bus, IOAPIC, IRQs, LINTs */
	const uint8_t *e = h + 44;
	for (int i = 0; i < cpus; i++, e += 20) {
		assert_int_equal(e[0], 0);	   /* processor */
		assert_int_equal(e[1], i);	   /* APIC ID */
		assert_int_equal(e[3], i ? 1 : 3); /* enabled, BSP on CPU 0 */
	}
	assert_int_equal(e[0], 1);	      /* bus */
	assert_int_equal(e[8], 2);	      /* IOAPIC */
	assert_int_equal(e[9], cpus);	      /* its ID follows the CPUs' */
	assert_true(table + len <= 0x100000); /* below 1 MiB */
}

static void test_mptable(void **state)
{
	struct guest_mem m;
	assert_int_equal(gmem_init(&m, 2 << 20), 0);
	assert_int_equal(gmem_add_region(&m, 0, 2 << 20, 0), 0);
	assert_int_equal(x86_write_mptable(&m, 2, 0x600, 0), 0);
	check_mptable(&m, LINUX_MPTABLE_GPA, 2);
	/* 64 vCPUs no longer fit in the last KiB below 640 KiB. */
	assert_int_equal(x86_write_mptable(&m, 64, 0x600, 0), 0);
	check_mptable(&m, LINUX_BIOS_GPA, 64);
	assert_int_equal(x86_write_mptable(&m, 0, 0, 0), -EINVAL);
	assert_int_equal(x86_write_mptable(&m, 255, 0, 0), -EINVAL);
	gmem_destroy(&m);
	/* Memory too small to hold it. */
	assert_int_equal(gmem_init(&m, 64 << 10), 0);
	assert_int_equal(gmem_add_region(&m, 0, 64 << 10, 0), 0);
	assert_int_equal(x86_write_mptable(&m, 1, 0, 0), -EFAULT);
	gmem_destroy(&m);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bzimage), cmocka_unit_test(test_pvh),
		cmocka_unit_test(test_plan),	cmocka_unit_test(test_e820),
		cmocka_unit_test(test_mptable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
