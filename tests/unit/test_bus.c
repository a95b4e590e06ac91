/* The bus: ranges never overlap, dispatch finds the right device with the
 * offset inside it, and unclaimed or straddling accesses read as all ones. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/devices.h"

struct probe {
	int calls;
	uint64_t last_off;
	uint32_t last_len;
	bool last_write;
	uint8_t value;
};

static void handler(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
		    bool is_write)
{
	struct probe *p = opaque;
	p->calls++;
	p->last_off = off;
	p->last_len = len;
	p->last_write = is_write;
	if (!is_write)
		memset(data, p->value, len);
	(void)vcpu;
}

static void test_register(void **state)
{
	struct bus b;
	struct probe p = {0};
	assert_int_equal(bus_init(&b), 0);
	assert_int_equal(bus_register(&b, 0x100, 0x10, handler, &p, "a"), 0);
	assert_int_equal(bus_register(&b, 0x110, 0x10, handler, &p, "b"), 0); /* adjacent: fine */
	assert_int_equal(bus_register(&b, 0xf8, 0x10, handler, &p, "c"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x10f, 1, handler, &p, "d"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x50, 0x1000, handler, &p, "e"),
			 -EEXIST); /* covers both */
	assert_int_equal(bus_register(&b, 0x0, 0, handler, &p, "f"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, handler, &p, "g"), -EINVAL);
	for (int i = 0; i < 100; i++) /* growth past the initial capacity, in reverse order */
		assert_int_equal(
			bus_register(&b, 0x10000 - (uint64_t)i * 0x10, 0x10, handler, &p, "h"), 0);
	assert_int_equal(b.nr, 102);
	for (int i = 1; i < b.nr; i++)
		assert_true(b.ranges[i - 1].base + b.ranges[i - 1].len <= b.ranges[i].base);
	assert_int_equal(bus_unregister(&b, 0x100), 0);
	assert_int_equal(bus_unregister(&b, 0x100), -ENOENT);
	assert_int_equal(bus_register(&b, 0xf8, 0x8, handler, &p, "c"), 0);
	bus_destroy(&b);
	(void)state;
}

static void test_dispatch(void **state)
{
	struct bus b;
	struct probe a = {.value = 0x11}, c = {.value = 0x22};
	assert_int_equal(bus_init(&b), 0);
	assert_int_equal(bus_register(&b, 0x1000, 0x100, handler, &a, "a"), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0x8, handler, &c, "c"), 0);
	uint8_t d[8];
	assert_true(bus_dispatch(&b, NULL, 0x1004, d, 4, false));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.last_off, 4);
	assert_int_equal(d[3], 0x11);
	assert_true(bus_dispatch(&b, NULL, 0x2007, d, 1, true));
	assert_int_equal(c.last_off, 7);
	assert_true(c.last_write);
	/* Unclaimed, straddling the end, and below everything: all ones, no call. */
	memset(d, 0, sizeof(d));
	assert_false(bus_dispatch(&b, NULL, 0x3000, d, 4, false));
	assert_int_equal(d[0], 0xff);
	assert_int_equal(d[3], 0xff);
	assert_false(bus_dispatch(&b, NULL, 0x2006, d, 4, false));
	assert_false(bus_dispatch(&b, NULL, 0x10fe, d, 8, false));
	assert_false(bus_dispatch(&b, NULL, 0x0, d, 1, true));
	assert_false(bus_dispatch(&b, NULL, UINT64_MAX, d, 8, false));
	assert_int_equal(a.calls, 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(b.unhandled, 5);
	bus_destroy(&b);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
