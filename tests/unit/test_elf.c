/* ELF loader: valid images load; every malformed header, segment and note is
 * refused with a message, never read out of bounds (runs under ASan). */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define IMG_SIZE 0x3000

/* A minimal valid image: 2 PT_LOAD segments and a PT_NOTE with a Wisp note. */
struct image {
	uint8_t buf[IMG_SIZE];
	size_t size;
};

static Elf64_Ehdr *ehdr(struct image *im)
{
	return (Elf64_Ehdr *)im->buf;
}
static Elf64_Phdr *phdr(struct image *im, int i)
{
	return (Elf64_Phdr *)(im->buf + 64) + i;
}

static void make_image(struct image *im)
{
	memset(im, 0, sizeof(*im));
	im->size = IMG_SIZE;
	Elf64_Ehdr *e = ehdr(im);
	memcpy(e->e_ident, ELFMAG, SELFMAG);
	e->e_ident[EI_CLASS] = ELFCLASS64;
	e->e_ident[EI_DATA] = ELFDATA2LSB;
	e->e_ident[EI_VERSION] = EV_CURRENT;
	e->e_type = ET_EXEC;
	e->e_machine = EM_X86_64;
	e->e_version = EV_CURRENT;
	e->e_entry = 0x100000;
	e->e_phoff = 64;
	e->e_phentsize = sizeof(Elf64_Phdr);
	e->e_phnum = 3;
	*phdr(im, 0) = (Elf64_Phdr){.p_type = PT_LOAD,
				    .p_offset = 0x1000,
				    .p_paddr = 0x100000,
				    .p_filesz = 0x800,
				    .p_memsz = 0x800};
	*phdr(im, 1) = (Elf64_Phdr){.p_type = PT_LOAD,
				    .p_offset = 0x2000,
				    .p_paddr = 0x101000,
				    .p_filesz = 0x100,
				    .p_memsz = 0x3000};
	/* The note lives at 0x2100 in the file. */
	uint8_t *n = im->buf + 0x2100;
	Elf64_Nhdr nh = {sizeof(WISP_NOTE_NAME), sizeof(struct wisp_note), WISP_NOTE_TYPE};
	memcpy(n, &nh, sizeof(nh));
	memcpy(n + 12, WISP_NOTE_NAME, sizeof(WISP_NOTE_NAME));
	struct wisp_note wn = {WISP_ABI_VERSION, 0, 0x100040, 0x100200};
	memcpy(n + 12 + 8, &wn, sizeof(wn));
	*phdr(im, 2) = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 0x2100, .p_filesz = 12 + 8 + 24};
	memset(im->buf + 0x1000, 0xab, 0x800);
	memset(im->buf + 0x2000, 0xcd, 0x100);
}

static int parse(struct image *im, struct elf_image *out, char *err)
{
	return elf_parse(im->buf, im->size, out, err, WISP_ERRLEN);
}

static void test_valid(void **state)
{
	struct image im;
	struct elf_image ei;
	char err[WISP_ERRLEN];
	make_image(&im);
	assert_int_equal(parse(&im, &ei, err), 0);
	assert_int_equal(ei.nr_segments, 2);
	assert_true(ei.has_wisp_note);
	assert_int_equal(ei.wisp.entry, 0x100040);
	assert_int_equal(ei.lowest, 0x100000);
	assert_int_equal(ei.highest, 0x104000);

	struct guest_mem mem;
	assert_int_equal(gmem_init(&mem, 4 << 20), 0);
	assert_int_equal(gmem_add_region(&mem, 0, 4 << 20, 0), 0);
	memset(mem.base + 0x101000, 0x77, 0x3000); /* bss must come back zeroed */
	assert_int_equal(elf_load(&ei, im.buf, &mem, WISP_IMAGE_MIN, err, sizeof(err)), 0);
	assert_int_equal(mem.base[0x100000], 0xab);
	assert_int_equal(mem.base[0x1007ff], 0xab);
	assert_int_equal(mem.base[0x1010ff], 0xcd);
	assert_int_equal(mem.base[0x101100], 0);
	assert_int_equal(mem.base[0x103fff], 0);
	gmem_destroy(&mem);
	(void)state;
}

/* Each mutation must be refused with a message containing `want`. */
static void expect_refused(struct image *im, const char *want)
{
	struct elf_image ei;
	char err[WISP_ERRLEN] = "";
	assert_int_not_equal(parse(im, &ei, err), 0);
	if (!strstr(err, want))
		fail_msg("error '%s' does not mention '%s'", err, want);
}

static void test_bad_headers(void **state)
{
	struct image im;
	make_image(&im);
	im.buf[0] = 0;
	expect_refused(&im, "not an ELF");
	make_image(&im);
	im.size = 10;
	expect_refused(&im, "not an ELF");
	make_image(&im);
	im.size = 40;
	expect_refused(&im, "truncated");
	make_image(&im);
	ehdr(&im)->e_ident[EI_CLASS] = ELFCLASS32;
	expect_refused(&im, "64-bit");
	make_image(&im);
	ehdr(&im)->e_machine = EM_AARCH64;
	expect_refused(&im, "x86-64");
	make_image(&im);
	ehdr(&im)->e_type = ET_DYN;
	expect_refused(&im, "executable");
	make_image(&im);
	ehdr(&im)->e_phoff = IMG_SIZE - 10;
	expect_refused(&im, "program headers");
	make_image(&im);
	ehdr(&im)->e_phoff = UINT64_MAX - 8; /* offset + size would wrap */
	expect_refused(&im, "program headers");
	make_image(&im);
	ehdr(&im)->e_phentsize = 32;
	expect_refused(&im, "program headers");
	make_image(&im);
	ehdr(&im)->e_phnum = 0;
	expect_refused(&im, "program headers");
	(void)state;
}

static void test_bad_segments(void **state)
{
	struct image im;
	make_image(&im);
	phdr(&im, 0)->p_offset = IMG_SIZE - 0x10;
	expect_refused(&im, "outside the file");
	make_image(&im);
	phdr(&im, 0)->p_filesz = UINT64_MAX;
	expect_refused(&im, "outside the file");
	make_image(&im);
	phdr(&im, 1)->p_filesz = 0x100;
	phdr(&im, 1)->p_memsz = 0x80;
	expect_refused(&im, "larger than memory");
	make_image(&im);
	phdr(&im, 0)->p_paddr = UINT64_MAX - 0x10;
	expect_refused(&im, "wraps");
	make_image(&im);
	phdr(&im, 1)->p_paddr = 0x100400; /* overlaps segment 0 */
	expect_refused(&im, "overlap");
	make_image(&im);
	phdr(&im, 0)->p_type = PT_NULL;
	phdr(&im, 1)->p_type = PT_NULL;
	expect_refused(&im, "no loadable");
	(void)state;
}

static void test_bad_notes(void **state)
{
	struct image im;
	make_image(&im);
	phdr(&im, 2)->p_filesz = 0x10000;
	expect_refused(&im, "outside the file");
	make_image(&im);
	uint32_t big = 0x7fffffff; /* descsz running past the segment */
	memcpy(im.buf + 0x2100 + 4, &big, 4);
	expect_refused(&im, "note runs past");
	make_image(&im);
	uint32_t small = 8;
	memcpy(im.buf + 0x2100 + 4, &small, 4);
	expect_refused(&im, "too short");
	(void)state;
}

static void test_load_bounds(void **state)
{
	struct image im;
	struct elf_image ei;
	char err[WISP_ERRLEN];
	struct guest_mem mem;
	assert_int_equal(gmem_init(&mem, 2 << 20), 0);
	assert_int_equal(gmem_add_region(&mem, 0, 2 << 20, 0), 0);

	make_image(&im);
	phdr(&im, 0)->p_paddr = 0x1000; /* inside the boot structures */
	assert_int_equal(parse(&im, &ei, err), 0);
	assert_int_not_equal(elf_load(&ei, im.buf, &mem, WISP_IMAGE_MIN, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "boot structures"));

	make_image(&im);
	phdr(&im, 1)->p_paddr = (2 << 20) - 0x1000; /* runs past the end of RAM */
	assert_int_equal(parse(&im, &ei, err), 0);
	assert_int_not_equal(elf_load(&ei, im.buf, &mem, WISP_IMAGE_MIN, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "outside guest RAM"));
	gmem_destroy(&mem);
	(void)state;
}

/* Random bytes, and random corruptions of a valid image, never crash. */
static void test_garbage(void **state)
{
	srand(1234);
	struct elf_image ei;
	char err[WISP_ERRLEN];
	for (int round = 0; round < 20000; round++) {
		struct image im;
		make_image(&im);
		int flips = 1 + rand() % 8;
		for (int i = 0; i < flips; i++)
			im.buf[rand() % 0x140] = (uint8_t)rand(); /* headers and phdrs */
		if (round % 3 == 0)
			im.buf[0x2100 + rand() % 44] = (uint8_t)rand(); /* the note */
		if (round % 5 == 0)
			im.size = (size_t)(rand() % IMG_SIZE);
		elf_parse(im.buf, im.size, &ei, err, sizeof(err));
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),	     cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_bad_segments), cmocka_unit_test(test_bad_notes),
		cmocka_unit_test(test_load_bounds),  cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
