/* Guest memory and page tables: the checked accessor refuses every range
 * that is not wholly inside one region (overflow included), and the page
 * tables translate what they should and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

static void test_accessor(void **state)
{
	struct guest_mem m;
	assert_int_equal(gmem_init(&m, 8 << 20), 0);
	assert_int_equal(gmem_add_region(&m, 0, 4 << 20, 0), 0);
	assert_int_equal(gmem_add_region(&m, 1ull << 32, 4 << 20, 4 << 20), 0);
	assert_ptr_equal(gmem_ptr(&m, 0, 1), m.base);
	assert_ptr_equal(gmem_ptr(&m, (4 << 20) - 8, 8), m.base + (4 << 20) - 8);
	assert_null(gmem_ptr(&m, (4 << 20) - 8, 9)); /* runs off the region */
	assert_null(gmem_ptr(&m, 4 << 20, 1));	     /* in the hole */
	assert_null(gmem_ptr(&m, (4 << 20) - 1, 2)); /* straddles into the hole */
	assert_ptr_equal(gmem_ptr(&m, 1ull << 32, 4 << 20), m.base + (4 << 20));
	assert_null(gmem_ptr(&m, (1ull << 32) - 1, 2)); /* straddles two regions */
	assert_null(gmem_ptr(&m, UINT64_MAX, 1));
	assert_null(gmem_ptr(&m, 16, UINT64_MAX)); /* gpa + len wraps */
	assert_null(gmem_ptr(&m, UINT64_MAX - 4, 16));
	assert_null(gmem_ptr(&m, 0, (4ull << 20) + 1));
	uint8_t b[4] = {1, 2, 3, 4};
	assert_int_equal(gmem_write(&m, 100, b, 4), 0);
	assert_int_equal(gmem_write(&m, (4 << 20) - 2, b, 4), -14);
	assert_int_equal(gmem_read(&m, UINT64_MAX - 1, b, 4), -14);
	/* Overlapping or out-of-file regions are refused. */
	assert_int_not_equal(gmem_add_region(&m, 0x1000, 0x1000, 0), 0);
	gmem_destroy(&m);

	assert_int_not_equal(gmem_init(&m, 1000), 0); /* not page-sized */
	(void)state;
}

static void test_layout(void **state)
{
	struct x86_ram r[2];
	assert_int_equal(x86_ram_layout(64 << 20, r), 1);
	assert_int_equal(r[0].size, 64 << 20);
	assert_int_equal(x86_ram_layout(4ull << 30, r), 2);
	assert_int_equal(r[0].size, X86_MMIO_HOLE_START);
	assert_int_equal(r[1].gpa, 1ull << 32);
	assert_int_equal(r[1].size, (4ull << 30) - X86_MMIO_HOLE_START);
	assert_int_equal(r[1].fd_offset, X86_MMIO_HOLE_START);
	(void)state;
}

static void test_page_tables(void **state)
{
	struct guest_mem m;
	assert_int_equal(gmem_init(&m, 4 << 20), 0);
	assert_int_equal(gmem_add_region(&m, 0, 4 << 20, 0), 0);
	int64_t end = x86_build_page_tables(&m, WISP_PML4_GPA, 4ull << 30, WISP_TSS_GPA);
	assert_int_equal(end, WISP_PML4_GPA + 3 * 4096 + 4 * 4096);
	uint64_t pa;
	bool user, rw;
	assert_false(x86_translate(&m, WISP_PML4_GPA, 0, &pa, &user, &rw)); /* page 0 */
	assert_false(x86_translate(&m, WISP_PML4_GPA, 0xfff, &pa, &user, &rw));
	assert_true(x86_translate(&m, WISP_PML4_GPA, 0x1234, &pa, &user, &rw));
	assert_int_equal(pa, 0x1234);
	assert_true(user && rw);
	assert_true(x86_translate(&m, WISP_PML4_GPA, 0x100abc, &pa, NULL, NULL));
	assert_int_equal(pa, 0x100abc);
	assert_true(x86_translate(&m, WISP_PML4_GPA, 0xfee00010, &pa, NULL, NULL));
	assert_int_equal(pa, 0xfee00010);
	assert_false(x86_translate(&m, WISP_PML4_GPA, 4ull << 30, &pa, NULL, NULL));
	assert_false(x86_translate(&m, WISP_PML4_GPA, 0xffff800000000000ull, &pa, NULL, NULL));
	/* Tables that would not fit below the limit are refused. */
	assert_true(x86_build_page_tables(&m, WISP_PML4_GPA, 512ull << 30, WISP_TSS_GPA) < 0);
	assert_true(x86_build_page_tables(&m, WISP_PML4_GPA, 0, WISP_TSS_GPA) < 0);
	gmem_destroy(&m);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accessor),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_page_tables),
	};
	return cmocka_run_group_tests_name("memory", tests, NULL, NULL);
}
