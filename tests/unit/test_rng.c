/* The RNG device, driven the way a guest drives it: find BAR0 in config
 * space, turn on memory decoding, then read RNG and write SEED. Expected
 * numbers come from outside this code base: the pcg32 reference demo's
 * output for (initstate 42, stream 54), which docs/rng-device.md promises. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pci_helpers.h"

/* pcg32-demo, round 1: pcg32_srandom_r(&rng, 42, 54), then six draws. */
static const uint32_t seed42[] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
				  0x83d2f293, 0xbfa4784b, 0xcbed606e};

struct fixture {
	struct bus pio, mmio;
	struct pci_bus pb;
	struct rng_device *rng;
	uint64_t bar;
	int slot;
};

static struct fixture *make(const uint32_t *seed)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(bus_init(&f.pio), 0);
	assert_int_equal(bus_init(&f.mmio), 0);
	assert_int_equal(pci_bus_init(&f.pb, &f.pio, &f.mmio), 0);
	assert_int_equal(rng_create(&f.pb, seed, &f.rng), 0);
	/* Find it by its IDs, as a driver would. */
	int slot = 1;
	while (slot < PCI_MAX_SLOTS &&
	       cfg_read(&f.pio, slot, 0, 4) != (PCI_DEVICE_WISP_RNG << 16 | PCI_VENDOR_WISP))
		slot++;
	assert_true(slot < PCI_MAX_SLOTS);
	assert_int_equal(cfg_read(&f.pio, slot, PCI_REG_REVISION, 4) >> 8, PCI_CLASS_OTHER_CRYPTO);
	uint32_t bar0 = cfg_read(&f.pio, slot, PCI_REG_BAR0, 4);
	cfg_write(&f.pio, slot, PCI_REG_BAR0, 0xffffffffu, 4);
	assert_int_equal(cfg_read(&f.pio, slot, PCI_REG_BAR0, 4), 0xfffff000u); /* 4 KiB */
	cfg_write(&f.pio, slot, PCI_REG_BAR0, bar0, 4);
	cfg_write(&f.pio, slot, PCI_REG_COMMAND, PCI_CMD_MEM, 2);
	f.bar = bar0 & ~0xfull;
	f.slot = slot;
	return &f;
}

static void destroy(struct fixture *f)
{
	rng_destroy(f->rng);
	pci_bus_destroy(&f->pb);
	assert_int_equal(f->mmio.nr, 0);
	bus_destroy(&f->pio);
	bus_destroy(&f->mmio);
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v = 0x12345678;
	assert_true(mmio_access(&f->mmio, f->bar + off, &v, 4, false));
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	assert_true(mmio_access(&f->mmio, f->bar + off, &v, 4, true));
}

static void test_seeded_sequence(void **state)
{
	uint32_t s = 42;
	struct fixture *f = make(&s);
	for (int i = 0; i < 6; i++)
		assert_int_equal(rd(f, 0), seed42[i]);
	destroy(f);
	(void)state;
}

static void test_guest_seeding(void **state)
{
	struct fixture *f = make(NULL);
	wr(f, 4, 42);
	for (int i = 0; i < 6; i++)
		assert_int_equal(rd(f, 0), seed42[i]);
	/* Seeding again restarts the sequence. */
	wr(f, 4, 42);
	assert_int_equal(rd(f, 0), seed42[0]);
	/* Another seed gives another sequence. */
	wr(f, 4, 43);
	uint32_t a = rd(f, 0), b = rd(f, 0);
	assert_false(a == seed42[0] && b == seed42[1]);
	struct rng_stats st;
	rng_get_stats(f->rng, &st);
	assert_int_equal(st.reads, 9);
	assert_int_equal(st.seeds, 3);
	assert_int_equal(st.ignored, 0);
	destroy(f);
	(void)state;
}

static void test_unseeded_differs(void **state)
{
	uint32_t a[4], b[4];
	struct fixture *f = make(NULL);
	for (int i = 0; i < 4; i++)
		a[i] = rd(f, 0);
	destroy(f);
	f = make(NULL);
	for (int i = 0; i < 4; i++)
		b[i] = rd(f, 0);
	destroy(f);
	/* Equal only if getrandom() gave the same 64 bits twice. */
	assert_memory_not_equal(a, b, sizeof(a));
	(void)state;
}

/* Each odd access of docs/rng-device.md, then proof the generator did not
 * move: the next proper read is still the next number of the sequence. */
static void test_odd_accesses(void **state)
{
	uint32_t s = 42;
	struct fixture *f = make(&s);
	assert_int_equal(rd(f, 0), seed42[0]);
	/* Write to RNG: ignored. */
	wr(f, 0, 0xdeadbeef);
	/* Read of SEED: 0, and no seed is revealed or changed. */
	assert_int_equal(rd(f, 4), 0);
	/* Registers beyond SEED, up to the end of the BAR: read 0, writes ignored. */
	assert_int_equal(rd(f, 8), 0);
	assert_int_equal(rd(f, 0xffc), 0);
	wr(f, 8, 1);
	wr(f, 0xffc, 1);
	/* Widths other than 4 and unaligned 4-byte accesses: all ones. */
	uint8_t buf[8];
	static const struct {
		uint64_t off;
		uint32_t len;
	} odd[] = {{0, 1}, {0, 2}, {0, 8}, {1, 1}, {2, 2}, {1, 4},     {2, 4},	  {3, 4},
		   {4, 1}, {4, 2}, {4, 8}, {5, 4}, {6, 2}, {0xff8, 8}, {0xfff, 1}};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		memset(buf, 0, sizeof(buf));
		assert_true(mmio_access(&f->mmio, f->bar + odd[i].off, buf, odd[i].len, false));
		for (uint32_t j = 0; j < odd[i].len; j++)
			assert_int_equal(buf[j], 0xff);
	}
	/* Odd writes to SEED do not seed: not even with 42's bytes. */
	uint32_t v = 42;
	assert_true(mmio_access(&f->mmio, f->bar + 4, &v, 1, true));
	assert_true(mmio_access(&f->mmio, f->bar + 4, &v, 2, true));
	uint64_t v64 = 42;
	assert_true(mmio_access(&f->mmio, f->bar + 4, &v64, 8, true));
	assert_true(mmio_access(&f->mmio, f->bar + 0, &v64, 8, true));
	assert_true(mmio_access(&f->mmio, f->bar + 5, &v, 4, true));
	/* Past the BAR: not the device's (the bus answers all ones). */
	assert_false(mmio_access(&f->mmio, f->bar + 0x1000, &v, 4, false));
	assert_false(mmio_access(&f->mmio, f->bar + 0xffe, &v, 4, false));
	/* The sequence went on untouched. */
	for (int i = 1; i < 6; i++)
		assert_int_equal(rd(f, 0), seed42[i]);
	struct rng_stats st;
	rng_get_stats(f->rng, &st);
	assert_int_equal(st.reads, 6);
	assert_int_equal(st.seeds, 0);
	assert_int_equal(st.ignored, 6 + 15 + 5);
	destroy(f);
	(void)state;
}

static void test_decoding_off(void **state)
{
	uint32_t s = 42;
	struct fixture *f = make(&s);
	/* With memory decoding off the BAR is not there and reads do not
	 * consume numbers. */
	cfg_write(&f->pio, f->slot, PCI_REG_COMMAND, 0, 2);
	uint32_t v;
	assert_false(mmio_access(&f->mmio, f->bar, &v, 4, false));
	assert_int_equal(v, 0xffffffffu);
	cfg_write(&f->pio, f->slot, PCI_REG_COMMAND, PCI_CMD_MEM, 2);
	assert_int_equal(rd(f, 0), seed42[0]);
	destroy(f);
	(void)state;
}

/* Two vCPU threads reading at once share one sequence: together they get
 * exactly the numbers one reader gets alone, none twice, none torn. */
#define PER_THREAD 4000

struct reader {
	struct fixture *f;
	uint32_t got[PER_THREAD];
};

static void *read_many(void *arg)
{
	struct reader *r = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		uint32_t v;
		mmio_access(&r->f->mmio, r->f->bar, &v, 4, false);
		r->got[i] = v;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void test_concurrent_readers(void **state)
{
	uint32_t s = 42;
	static uint32_t alone[2 * PER_THREAD], together[2 * PER_THREAD];
	static struct reader r[2];
	struct fixture *f = make(&s);
	for (int i = 0; i < 2 * PER_THREAD; i++)
		alone[i] = rd(f, 0);
	wr(f, 4, 42);
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		r[i].f = f;
		assert_int_equal(pthread_create(&t[i], NULL, read_many, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	memcpy(together, r[0].got, sizeof(r[0].got));
	memcpy(together + PER_THREAD, r[1].got, sizeof(r[1].got));
	qsort(alone, 2 * PER_THREAD, sizeof(uint32_t), cmp_u32);
	qsort(together, 2 * PER_THREAD, sizeof(uint32_t), cmp_u32);
	assert_memory_equal(alone, together, sizeof(alone));
	destroy(f);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeded_sequence),	 cmocka_unit_test(test_guest_seeding),
		cmocka_unit_test(test_unseeded_differs), cmocka_unit_test(test_odd_accesses),
		cmocka_unit_test(test_decoding_off),	 cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
