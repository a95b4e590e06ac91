/* Split virtqueues, device side: good chains come out as the right iovecs,
 * and every malformed ring or chain breaks the queue with its own reason,
 * never touching memory outside guest RAM (ASan watches the malloc'd RAM). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../virtio_harness.h"

#define NUM 8

static struct vh h;
static struct virtq q;
static struct virtq_chain c;

static int setup(void **state)
{
	(void)state;
	if (vh_init(&h, VH_RAM))
		return -1;
	h.num = NUM;
	memset(&q, 0, sizeof(q));
	q.s = (struct virtq_state){.num = NUM,
				   .desc_gpa = VH_RING(0),
				   .avail_gpa = VH_RING(0) + 16 * NUM,
				   .used_gpa = VH_RING(0) + 0x2000};
	if (virtq_setup(&q, &h.mem, false, true))
		return -1;
	q.s.ready = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vh_destroy(&h);
	return 0;
}

static struct vring_desc *D(void)
{
	return vh_desc(&h, 0);
}

static void expect_broken(const char *why)
{
	assert_int_equal(virtq_pop(&q, &c), -EINVAL);
	assert_true(q.broken);
	assert_string_equal(q.error, why);
	assert_int_equal(virtq_pop(&q, &c), 0); /* nothing more from a broken queue */
}

static void test_good_chain(void **state)
{
	(void)state;
	struct vh_buf b[] = {
		{VH_DATA, 16, false}, {VH_DATA + 100, 200, true}, {VH_DATA + 400, 1, true}};
	assert_int_equal(virtq_pop(&q, &c), 0); /* empty */
	vh_chain(&h, 0, 2, b, 3);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.head, 2);
	assert_int_equal(c.nr_r, 1);
	assert_int_equal(c.nr_w, 2);
	assert_int_equal(c.r_len, 16);
	assert_int_equal(c.w_len, 201);
	assert_ptr_equal(c.iov[0].iov_base, h.ram + VH_DATA);
	assert_ptr_equal(c.iov[2].iov_base, h.ram + VH_DATA + 400);
	assert_int_equal(virtq_pop(&q, &c), 0);
	virtq_push(&q, c.head, 201);
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
	assert_int_equal(e.id, 2);
	assert_int_equal(e.len, 201);
	/* The I/O counters every device gets from this path (wispd's metrics). */
	assert_int_equal(q.chains, 1);
	assert_int_equal(q.tx_bytes, 16);
	assert_int_equal(q.rx_bytes, 201);
}

static void test_unpop(void **state)
{
	(void)state;
	struct vh_buf b[] = {{VH_DATA, 24, false}, {VH_DATA + 100, 16, true}};
	vh_chain(&h, 0, 0, b, 2);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(q.tx_bytes, 24);
	virtq_unpop(&q); /* given back: neither counted as served nor as read */
	assert_int_equal(q.chains, 0);
	assert_int_equal(q.tx_bytes, 0);
	assert_true(virtq_has_avail(&q));
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_false(virtq_has_avail(&q));
	assert_int_equal(q.chains, 1);
	assert_int_equal(q.tx_bytes, 24);
}

static void test_zero_length_buffer(void **state)
{
	(void)state;
	struct vh_buf b = {0xdead0000000ull, 0, true}; /* never dereferenced */
	vh_chain(&h, 0, 0, &b, 1);
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.w_len, 0);
}

static void test_loop(void **state)
{
	(void)state;
	struct vh_buf b[] = {{VH_DATA, 1, true}, {VH_DATA, 1, true}};
	vh_chain(&h, 0, 0, b, 2);
	D()[1].flags |= VRING_DESC_F_NEXT;
	D()[1].next = 0;
	expect_broken("descriptor chain loops");
}

static void test_self_loop(void **state)
{
	(void)state;
	struct vh_buf b = {VH_DATA, 1, true};
	vh_chain(&h, 0, 3, &b, 1);
	D()[3].flags |= VRING_DESC_F_NEXT;
	D()[3].next = 3;
	expect_broken("descriptor chain loops");
}

static void test_bad_next(void **state)
{
	(void)state;
	struct vh_buf b = {VH_DATA, 1, true};
	vh_chain(&h, 0, 0, &b, 1);
	D()[0].flags |= VRING_DESC_F_NEXT;
	D()[0].next = NUM;
	expect_broken("descriptor index out of range");
}

static void test_bad_head(void **state)
{
	(void)state;
	vh_publish(&h, 0, NUM);
	expect_broken("available ring entry out of range");
}

static void test_avail_jump(void **state)
{
	(void)state;
	vh_avail(&h, 0)->idx = NUM + 1;
	expect_broken("available index moved by more than the queue size");
}

static void test_avail_full_ring_ok(void **state)
{
	(void)state;
	for (int i = 0; i < NUM; i++) {
		struct vh_buf b = {VH_DATA + (uint64_t)i * 16, 16, true};
		vh_chain(&h, 0, (uint16_t)i, &b, 1);
	}
	for (int i = 0; i < NUM; i++)
		assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(virtq_pop(&q, &c), 0);
}

static void test_buffer_bounds(void **state)
{
	(void)state;
	/* Exactly the last byte of RAM is fine; one more is not. */
	struct vh_buf ok = {VH_RAM - 16, 16, true};
	vh_chain(&h, 0, 0, &ok, 1);
	assert_int_equal(virtq_pop(&q, &c), 1);
	struct vh_buf over = {VH_RAM - 16, 17, true};
	vh_chain(&h, 0, 0, &over, 1);
	expect_broken("buffer outside guest RAM");
}

static void test_buffer_wraps(void **state)
{
	(void)state;
	struct vh_buf b = {0xfffffffffffff000ull, 0x2000, false};
	vh_chain(&h, 0, 0, &b, 1);
	expect_broken("buffer outside guest RAM");
}

static void test_buffer_max_len(void **state)
{
	(void)state;
	struct vh_buf b = {VH_DATA, 0xffffffffu, false};
	vh_chain(&h, 0, 0, &b, 1);
	expect_broken("buffer outside guest RAM");
}

static void test_readable_after_writable(void **state)
{
	(void)state;
	struct vh_buf b[] = {{VH_DATA, 1, true}, {VH_DATA, 1, false}};
	vh_chain(&h, 0, 0, b, 2);
	expect_broken("readable buffer after a writable one");
}

static void test_max_bytes(void **state)
{
	(void)state;
	q.max_bytes = 100;
	struct vh_buf b[] = {{VH_DATA, 60, false}, {VH_DATA, 60, false}};
	vh_chain(&h, 0, 0, b, 2);
	expect_broken("descriptor chain too large");
}

/* An indirect table of n descriptors at VH_DATA + 0x1000, each 1 byte. */
static void indirect(int n, bool write)
{
	struct vring_desc *t = vh_ptr(&h, VH_DATA + 0x1000);
	for (int i = 0; i < n; i++)
		t[i] = (struct vring_desc){VH_DATA, 1,
					   (uint16_t)((write ? VRING_DESC_F_WRITE : 0) |
						      (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
					   (uint16_t)(i + 1)};
	D()
	[0] = (struct vring_desc){VH_DATA + 0x1000, (uint32_t)(16 * n), VRING_DESC_F_INDIRECT, 0};
	vh_publish(&h, 0, 0);
}

static void test_indirect_ok(void **state)
{
	(void)state;
	indirect(VIRTQ_MAX_CHAIN, true); /* longer than the queue: fine through a table */
	assert_int_equal(virtq_pop(&q, &c), 1);
	assert_int_equal(c.nr_w, VIRTQ_MAX_CHAIN);
}

static void test_indirect_too_long(void **state)
{
	(void)state;
	indirect(VIRTQ_MAX_CHAIN + 1, true);
	expect_broken("bad indirect table length");
}

static void test_indirect_loop(void **state)
{
	(void)state;
	indirect(4, true);
	struct vring_desc *t = vh_ptr(&h, VH_DATA + 0x1000);
	t[3].flags |= VRING_DESC_F_NEXT;
	t[3].next = 1;
	expect_broken("descriptor chain loops");
}

static void test_indirect_nested(void **state)
{
	(void)state;
	indirect(2, true);
	struct vring_desc *t = vh_ptr(&h, VH_DATA + 0x1000);
	t[1] = (struct vring_desc){VH_DATA + 0x1000, 32, VRING_DESC_F_INDIRECT, 0};
	expect_broken("indirect table inside an indirect table");
}

static void test_indirect_with_next(void **state)
{
	(void)state;
	indirect(2, true);
	D()[0].flags |= VRING_DESC_F_NEXT;
	expect_broken("indirect descriptor with NEXT set");
}

static void test_indirect_not_head(void **state)
{
	(void)state;
	struct vh_buf b[] = {{VH_DATA, 1, false}, {VH_DATA + 0x1000, 32, false}};
	vh_chain(&h, 0, 0, b, 2);
	D()[1].flags |= VRING_DESC_F_INDIRECT;
	expect_broken("indirect descriptor not at the head of the chain");
}

static void test_indirect_bad_len(void **state)
{
	(void)state;
	indirect(2, true);
	D()[0].len = 17;
	expect_broken("bad indirect table length");
}

static void test_indirect_outside(void **state)
{
	(void)state;
	indirect(2, true);
	D()[0].addr = VH_RAM - 16;
	expect_broken("indirect table outside guest RAM");
}

static void test_indirect_not_negotiated(void **state)
{
	(void)state;
	q.indirect = false;
	indirect(2, true);
	expect_broken("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
}

static void test_setup_checks(void **state)
{
	(void)state;
	struct virtq v = {.s = q.s};
	v.s.num = 6;
	assert_int_equal(virtq_setup(&v, &h.mem, false, false), -EINVAL);
	v.s.num = 512;
	assert_int_equal(virtq_setup(&v, &h.mem, false, false), -EINVAL);
	v.s.num = NUM;
	v.s.desc_gpa = VH_RING(0) + 8;
	assert_int_equal(virtq_setup(&v, &h.mem, false, false), -EINVAL);
	assert_string_equal(v.error, "ring address misaligned");
	v.s.desc_gpa = VH_RAM - 64; /* 128 bytes needed */
	assert_int_equal(virtq_setup(&v, &h.mem, false, false), -EINVAL);
	assert_string_equal(v.error, "ring outside guest RAM");
	v.s.desc_gpa = VH_RING(0);
	v.s.used_gpa = VH_RAM - 8;
	assert_int_equal(virtq_setup(&v, &h.mem, false, false), -EINVAL);
}

static void test_interrupt_suppression(void **state)
{
	(void)state;
	assert_false(virtq_need_interrupt(&q)); /* nothing pushed */
	virtq_push(&q, 0, 0);
	assert_true(virtq_need_interrupt(&q));
	vh_avail(&h, 0)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	virtq_push(&q, 0, 0);
	assert_false(virtq_need_interrupt(&q));
}

static void test_event_idx(void **state)
{
	(void)state;
	q.event_idx = true;
	uint16_t *used_event = &vh_avail(&h, 0)->ring[NUM];
	*used_event = 2; /* interrupt me when the used index passes 2 */
	virtq_push(&q, 0, 0);
	assert_true(virtq_need_interrupt(&q)); /* first one always */
	virtq_push(&q, 0, 0);
	assert_false(virtq_need_interrupt(&q)); /* idx 2: not past 2 yet */
	virtq_push(&q, 0, 0);
	assert_true(virtq_need_interrupt(&q)); /* idx 3 */
	/* The device asks to be notified from its next avail entry on. */
	q.s.last_avail = 5;
	vh_avail(&h, 0)->idx = 5;
	assert_false(virtq_enable_notify(&q));
	assert_int_equal(*(uint16_t *)&vh_used(&h, 0)->ring[NUM], 5);
	vh_avail(&h, 0)->idx = 6;
	assert_true(virtq_enable_notify(&q));
}

static void test_slice_and_copy(void **state)
{
	(void)state;
	struct vh_buf b[] = {{VH_DATA, 3, false},
			     {VH_DATA + 10, 5, false},
			     {VH_DATA + 20, 4, true},
			     {VH_DATA + 30, 4, true}};
	memcpy(h.ram + VH_DATA, "abc", 3);
	memcpy(h.ram + VH_DATA + 10, "defgh", 5);
	vh_chain(&h, 0, 0, b, 4);
	assert_int_equal(virtq_pop(&q, &c), 1);
	char buf[16] = {0};
	assert_int_equal(virtq_read(&c, 2, buf, 10), 6); /* short: only 6 bytes from 2 */
	assert_string_equal(buf, "cdefgh");
	assert_int_equal(virtq_write(&c, 3, "WXYZ", 4), 4);
	assert_memory_equal(h.ram + VH_DATA + 23, "W", 1);
	assert_memory_equal(h.ram + VH_DATA + 30, "XYZ", 3);
	struct iovec v[VIRTQ_MAX_CHAIN];
	assert_int_equal(virtq_slice(&c, true, 2, 4, v), 2);
	assert_int_equal(v[0].iov_len, 2);
	assert_int_equal(v[1].iov_len, 2);
	assert_int_equal(virtq_slice(&c, false, 8, 4, v), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_good_chain),
		T(test_unpop),
		T(test_zero_length_buffer),
		T(test_loop),
		T(test_self_loop),
		T(test_bad_next),
		T(test_bad_head),
		T(test_avail_jump),
		T(test_avail_full_ring_ok),
		T(test_buffer_bounds),
		T(test_buffer_wraps),
		T(test_buffer_max_len),
		T(test_readable_after_writable),
		T(test_max_bytes),
		T(test_indirect_ok),
		T(test_indirect_too_long),
		T(test_indirect_loop),
		T(test_indirect_nested),
		T(test_indirect_with_next),
		T(test_indirect_not_head),
		T(test_indirect_bad_len),
		T(test_indirect_outside),
		T(test_indirect_not_negotiated),
		T(test_setup_checks),
		T(test_interrupt_suppression),
		T(test_event_idx),
		T(test_slice_and_copy),
	};
	return cmocka_run_group_tests_name("virtq", tests, NULL, NULL);
}
