/* The virtio-mmio transport: registers, feature negotiation, queue setup,
 * reset, interrupt status, config space, and what a misbehaving driver gets
 * (errors and DEVICE_NEEDS_RESET, never a crash). Driven through the MMIO
 * handler with virtio-rng and virtio-blk as the devices. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../virtio_harness.h"

static struct vh h;
static char err[256];

static int setup_rng(void **state)
{
	(void)state;
	if (vh_init(&h, VH_RAM))
		return -1;
	struct virtio_dev *d = virtio_rng_create(err, sizeof(err));
	return d ? vh_bind(&h, d) : -1;
}

static int teardown(void **state)
{
	(void)state;
	vh_destroy(&h);
	return 0;
}

static void test_identity(void **state)
{
	(void)state;
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_DEVICE_ID), 4);
	vh_write(&h, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_DEVICE_FEATURES) & 1, 1); /* VERSION_1 */
	vh_write(&h, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = vh_read(&h, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(lo & 1u << VIRTIO_RING_F_INDIRECT_DESC);
	assert_true(lo & 1u << VIRTIO_RING_F_EVENT_IDX);
	vh_write(&h, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
	vh_write(&h, VIRTIO_MMIO_QUEUE_SEL, 1); /* rng has one queue */
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_QUEUE_READY), 0);
}

/* Status after offering `features` as the driver. */
static uint32_t negotiate(uint64_t features)
{
	vh_write(&h, VIRTIO_MMIO_STATUS, 0);
	vh_write(&h, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vh_write(&h, VIRTIO_MMIO_STATUS,
		 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			 VIRTIO_CONFIG_S_FEATURES_OK);
	return vh_read(&h, VIRTIO_MMIO_STATUS);
}

static void test_features(void **state)
{
	(void)state;
	uint64_t v1 = 1ull << VIRTIO_F_VERSION_1;
	assert_false(negotiate(0) & VIRTIO_CONFIG_S_FEATURES_OK); /* legacy: refused */
	assert_false(negotiate(v1 | 1ull << 40) & VIRTIO_CONFIG_S_FEATURES_OK); /* not offered */
	assert_true(negotiate(v1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Frozen once FEATURES_OK is set. */
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vh_write(&h, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_int_equal(h.d->t.driver_features, v1);
}

static void test_driver_ok_early(void **state)
{
	(void)state;
	vh_write(&h, VIRTIO_MMIO_STATUS,
		 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(vh_read(&h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "DRIVER_OK before FEATURES_OK");
	vh_write(&h, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_STATUS), 0);
}

static void test_request_and_isr(void **state)
{
	(void)state;
	uint32_t s = vh_setup(&h, 0, 1, 8);
	assert_int_equal(s & 0x4f, 0x0f);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_QUEUE_READY), 1);
	memset(vh_ptr(&h, VH_DATA), 0, 256);
	struct vh_buf b = {VH_DATA, 256, true};
	vh_chain(&h, 0, 0, &b, 1);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* no ioeventfd here: served inline */
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
	assert_int_equal(e.len, 256);
	static const uint8_t zero[256];
	assert_memory_not_equal(vh_ptr(&h, VH_DATA), zero, 256);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	vh_write(&h, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_frozen_live_queue(void **state)
{
	(void)state;
	vh_setup(&h, 0, 1, 8);
	vh_write(&h, VIRTIO_MMIO_QUEUE_SEL, 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x12340);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NUM, 2);
	assert_int_equal(h.d->vq[0].s.desc_gpa, VH_RING(0));
	assert_int_equal(h.d->vq[0].s.num, 8);
}

static void test_bad_ring_at_ready(void **state)
{
	(void)state;
	negotiate(1ull << VIRTIO_F_VERSION_1);
	vh_write(&h, VIRTIO_MMIO_QUEUE_SEL, 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NUM, 8);
	vh_write(&h, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_DESC_HIGH, 1); /* 4 GiB: beyond RAM */
	vh_write(&h, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(vh_read(&h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_string_equal(h.d->last_error, "ring outside guest RAM");
}

static void test_malformed_chain_needs_reset(void **state)
{
	(void)state;
	vh_setup(&h, 0, 1, 8);
	vh_publish(&h, 0, 9); /* head out of range */
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(vh_read(&h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(vh_read(&h, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* A guest cannot clear NEEDS_RESET except by a reset. */
	vh_write(&h, VIRTIO_MMIO_STATUS, 0x0f);
	assert_true(vh_read(&h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Reset, set up again: the device works. */
	vh_setup(&h, 0, 1, 8);
	assert_int_equal(vh_read(&h, VIRTIO_MMIO_STATUS), 0x0f);
	struct vh_buf b = {VH_DATA, 8, true};
	vh_chain(&h, 0, 0, &b, 1);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
}

static void test_odd_accesses(void **state)
{
	(void)state;
	uint64_t v = 0x1122334455667788ull;
	virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_STATUS, (uint8_t *)&v, 2, false);
	assert_int_equal(v & 0xffff, 0);
	assert_int_equal(h.d->guest_errors, 1);
	virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_STATUS + 1, (uint8_t *)&v, 4, true);
	assert_int_equal(h.d->t.status, 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 5); /* no such queue */
	assert_int_equal(h.d->guest_errors, 3);
	assert_int_equal(vh_read(&h, 0xffc), 0); /* beyond the (empty) config space */
}

/* Why 13: a QueueNotify of width 1, 2 or 8 is what docs/virtio.md says:
 * a counted guest error, not served (virtio-mmio 4.2.2.2 wants 32-bit
 * register accesses); the same notify as 4 bytes is served. */
static void test_notify_widths(void **state)
{
	(void)state;
	vh_setup(&h, 0, 1, 8);
	struct vh_buf b = {VH_DATA, 8, true};
	vh_chain(&h, 0, 0, &b, 1);
	struct vring_used_elem e;
	uint64_t errors = h.d->guest_errors;
	static const uint32_t widths[] = {1, 2, 8};
	for (int i = 0; i < 3; i++) {
		uint64_t q = 0;
		virtio_mmio_access(h.d, NULL, VIRTIO_MMIO_QUEUE_NOTIFY, (uint8_t *)&q, widths[i],
				   true);
		assert_int_equal(h.d->guest_errors, errors + (uint64_t)i + 1);
		assert_int_equal(vh_take_used(&h, 0, &e), 0); /* not served */
	}
	assert_string_equal(h.d->last_error, "register access not 32-bit aligned");
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(h.d->guest_errors, errors + 3);
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
}

static void test_notify_before_driver_ok(void **state)
{
	(void)state;
	negotiate(1ull << VIRTIO_F_VERSION_1);
	h.num = 8;
	vh_write(&h, VIRTIO_MMIO_QUEUE_SEL, 0);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NUM, 8);
	vh_write(&h, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)VH_RING(0));
	vh_write(&h, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(VH_RING(0) + 128));
	vh_write(&h, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(VH_RING(0) + 0x2000));
	vh_write(&h, VIRTIO_MMIO_QUEUE_READY, 1);
	struct vh_buf b = {VH_DATA, 8, true};
	vh_chain(&h, 0, 0, &b, 1);
	vh_write(&h, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* not running yet: ignored */
	struct vring_used_elem e;
	assert_int_equal(vh_take_used(&h, 0, &e), 0);
	vh_write(&h, VIRTIO_MMIO_STATUS, 0x0f); /* DRIVER_OK serves what was queued */
	assert_int_equal(vh_take_used(&h, 0, &e), 1);
}

static void test_blk_config_widths(void **state)
{
	(void)state;
	char path[] = "/tmp/wisp-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 0x123400), 0);
	close(fd);
	struct virtio_blk_opts o = {.path = path};
	struct virtio_dev *d = virtio_blk_create(&o, err, sizeof(err));
	unlink(path);
	assert_non_null(d);
	uint64_t cap = 0;
	uint8_t b1;
	uint16_t b2;
	uint32_t b4;
	virtio_mmio_access(d, NULL, VIRTIO_MMIO_CONFIG, (uint8_t *)&cap, 8, false);
	virtio_mmio_access(d, NULL, VIRTIO_MMIO_CONFIG + 1, &b1, 1, false);
	virtio_mmio_access(d, NULL, VIRTIO_MMIO_CONFIG, (uint8_t *)&b2, 2, false);
	virtio_mmio_access(d, NULL, VIRTIO_MMIO_CONFIG + 20, (uint8_t *)&b4, 4, false);
	assert_int_equal(cap, 0x123400 / 512);
	assert_int_equal(b1, (0x123400 / 512) >> 8);
	assert_int_equal(b2, 0x123400 / 512);
	assert_int_equal(b4, 512); /* blk_size */
	virtio_mmio_access(d, NULL, VIRTIO_MMIO_CONFIG + 60, (uint8_t *)&b4, 4, false);
	assert_int_equal(b4, 0); /* past the config we fill */
	virtio_dev_free(d);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_rng, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_features),
		T(test_driver_ok_early),
		T(test_request_and_isr),
		T(test_frozen_live_queue),
		T(test_bad_ring_at_ready),
		T(test_malformed_chain_needs_reset),
		T(test_odd_accesses),
		T(test_notify_before_driver_ok),
		T(test_notify_widths),
		cmocka_unit_test(test_blk_config_widths),
	};
	return cmocka_run_group_tests_name("virtio-mmio", tests, NULL, NULL);
}
