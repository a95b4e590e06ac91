/* PCI bus 0: the CONFIG_ADDRESS latch, config reads and writes through the
 * data window, the host bridge, BAR placement, sizing and decoding, and what
 * a guest gets for every access that names nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pci_helpers.h"

struct counter {
	int calls;
	uint64_t last_off;
};

static void count_access(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
			 bool is_write)
{
	struct counter *c = opaque;
	c->calls++;
	c->last_off = off;
	if (!is_write)
		memset(data, 0x5a, len);
}

struct fixture {
	struct bus pio, mmio;
	struct pci_bus pb;
	struct counter mem_hits, io_hits;
	struct pci_device dev;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(bus_init(&f.pio), 0);
	assert_int_equal(bus_init(&f.mmio), 0);
	assert_int_equal(pci_bus_init(&f.pb, &f.pio, &f.mmio), 0);
	f.dev = (struct pci_device){
		.name = "test",
		.vendor_id = 0x1234,
		.device_id = 0xabcd,
		.class_code = 0xff0000,
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = 0x1000,
			    .fn = count_access,
			    .opaque = &f.mem_hits},
		.bars[2] = {.type = PCI_BAR_IO,
			    .size = 0x20,
			    .fn = count_access,
			    .opaque = &f.io_hits},
	};
	assert_int_equal(pci_add_device(&f.pb, &f.dev), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pci_bus_destroy(&f->pb);
	/* Nothing may be left on the buses once the PCI bus is gone. */
	assert_int_equal(f->pio.nr, 0);
	assert_int_equal(f->mmio.nr, 0);
	bus_destroy(&f->pio);
	bus_destroy(&f->mmio);
	return 0;
}

static void test_address_latch(void **state)
{
	struct fixture *f = *state;
	/* Linux's mechanism-#1 probe: write 0x80000000, read it back. */
	port_write(&f->pio, PCI_CFG_ADDR_PORT, 0x80000000u, 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT, 4), 0x80000000u);
	/* Reserved bits (30:24 and 1:0) read as zero. */
	port_write(&f->pio, PCI_CFG_ADDR_PORT, 0xffffffffu, 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT, 4), 0x80fffffcu);
	/* Narrow accesses never reach the latch: mechanism #2's probe fails. */
	port_write(&f->pio, PCI_CFG_ADDR_PORT + 3, 0x01, 1);
	port_write(&f->pio, PCI_CFG_ADDR_PORT, 0x00, 1);
	port_write(&f->pio, PCI_CFG_ADDR_PORT + 2, 0x0000, 2);
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT, 1), 0xff);
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT + 2, 2), 0xffff);
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT, 4), 0x80fffffcu);
	/* A 4-byte access straddling the port range is nobody's. */
	assert_int_equal(port_read(&f->pio, PCI_CFG_ADDR_PORT + 2, 4), 0xffffffffu);
}

static void test_host_bridge(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_VENDOR, 2), PCI_VENDOR_WISP);
	assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_DEVICE, 2), PCI_DEVICE_WISP_BRIDGE);
	/* Class word at 0x0a, as pci_sanity_check reads it. */
	assert_int_equal(cfg_read(&f->pio, 0, 0x0a, 2), 0x0600);
	assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_REVISION, 4) >> 8, PCI_CLASS_HOST_BRIDGE);
	assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_HEADER_TYPE, 1), 0);
	for (int i = 0; i < PCI_NR_BARS; i++)
		assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_BAR0 + 4 * i, 4), 0);
	/* The test device took the next slot. */
	assert_int_equal(f->dev.slot, 1);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_VENDOR, 4), 0xabcd1234u);
}

static void test_nothing_there(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cfg_read(&f->pio, 2, PCI_REG_VENDOR, 4), 0xffffffffu); /* empty slot */
	assert_int_equal(cfg_read(&f->pio, 31, PCI_REG_VENDOR, 2), 0xffff);
	/* Function 1, bus 1, enable bit clear: all master aborts. */
	port_write(&f->pio, PCI_CFG_ADDR_PORT, cfg_address(0, 1, 0), 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_DATA_PORT, 4), 0xffffffffu);
	port_write(&f->pio, PCI_CFG_ADDR_PORT, cfg_address(0, 0, 0) | 1u << 16, 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_DATA_PORT, 4), 0xffffffffu);
	port_write(&f->pio, PCI_CFG_ADDR_PORT, cfg_address(0, 0, 0) & ~PCI_CFG_ADDR_ENABLE, 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_DATA_PORT, 4), 0xffffffffu);
	/* Writes there change nothing anywhere. */
	port_write(&f->pio, PCI_CFG_DATA_PORT, 0, 4);
	assert_int_equal(cfg_read(&f->pio, 0, PCI_REG_VENDOR, 2), PCI_VENDOR_WISP);
	/* Straddling the data window's end: nobody's. */
	port_write(&f->pio, PCI_CFG_ADDR_PORT, cfg_address(0, 0, 0), 4);
	assert_int_equal(port_read(&f->pio, PCI_CFG_DATA_PORT + 3, 2), 0xffff);
}

static void test_narrow_reads(void **state)
{
	struct fixture *f = *state;
	/* Bytes and words of one dword at every offset agree with the dword. */
	uint32_t id = cfg_read(&f->pio, 1, 0, 4);
	for (int b = 0; b < 4; b++)
		assert_int_equal(cfg_read(&f->pio, 1, b, 1), (id >> (8 * b)) & 0xff);
	for (int b = 0; b < 3; b++)
		assert_int_equal(cfg_read(&f->pio, 1, b, 2), (id >> (8 * b)) & 0xffff);
	/* The last register of config space, reserved: reads zero. */
	assert_int_equal(cfg_read(&f->pio, 1, 0xfc, 4), 0);
	assert_int_equal(cfg_read(&f->pio, 1, 0xff, 1), 0);
}

static void test_read_only_fields(void **state)
{
	struct fixture *f = *state;
	cfg_write(&f->pio, 1, PCI_REG_VENDOR, 0, 4);
	cfg_write(&f->pio, 1, PCI_REG_REVISION, 0, 4);
	cfg_write(&f->pio, 1, PCI_REG_HEADER_TYPE, 0xff, 1);
	cfg_write(&f->pio, 1, PCI_REG_INT_PIN, 0xff, 1);
	cfg_write(&f->pio, 1, 0x40, 0xffffffffu, 4); /* device-specific: none */
	cfg_write(&f->pio, 1, 0x30, 0xffffffffu, 4); /* expansion ROM: none */
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_VENDOR, 4), 0xabcd1234u);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_REVISION, 4), 0xff000000u);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_HEADER_TYPE, 1), 0);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_INT_PIN, 1), 0);
	assert_int_equal(cfg_read(&f->pio, 1, 0x40, 4), 0);
	assert_int_equal(cfg_read(&f->pio, 1, 0x30, 4), 0);
	/* Scratch registers the OS owns keep what it writes. */
	cfg_write(&f->pio, 1, PCI_REG_INT_LINE, 0x0b, 1);
	cfg_write(&f->pio, 1, PCI_REG_CACHE_LINE, 0x10, 1);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_INT_LINE, 1), 0x0b);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_CACHE_LINE, 1), 0x10);
	/* Command: only IO, MEM, MASTER and INTx-disable stick. */
	cfg_write(&f->pio, 1, PCI_REG_COMMAND, 0xffff, 2);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_COMMAND, 2), 0x0407);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_STATUS, 2), 0);
}

static void test_bar_placement_and_sizing(void **state)
{
	struct fixture *f = *state;
	uint32_t bar0 = cfg_read(&f->pio, 1, PCI_REG_BAR0, 4);
	uint32_t bar2 = cfg_read(&f->pio, 1, PCI_REG_BAR0 + 8, 4);
	/* Memory BAR: in the MMIO window, naturally aligned, type bits 0. */
	assert_true(bar0 >= PCI_MMIO_WINDOW_START);
	assert_true(bar0 < PCI_MMIO_WINDOW_START + PCI_MMIO_WINDOW_SIZE);
	assert_int_equal(bar0 & 0xfff, 0);
	/* I/O BAR: in the port window, bit 0 set. */
	assert_int_equal(bar2 & 3, PCI_BAR_IO_FLAG);
	assert_true((bar2 & ~3u) >= PCI_IO_WINDOW_START);
	assert_int_equal(bar2 & 0x1c, 0);
	/* Unused BARs are hard-wired to 0. */
	cfg_write(&f->pio, 1, PCI_REG_BAR0 + 4, 0xffffffffu, 4);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_BAR0 + 4, 4), 0);
	/* Sizing: all ones in, size mask out; then the old value goes back. */
	cfg_write(&f->pio, 1, PCI_REG_BAR0, 0xffffffffu, 4);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_BAR0, 4), 0xfffff000u);
	cfg_write(&f->pio, 1, PCI_REG_BAR0 + 8, 0xffffffffu, 4);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_BAR0 + 8, 4), 0x0000ffe1u);
	cfg_write(&f->pio, 1, PCI_REG_BAR0, bar0, 4);
	cfg_write(&f->pio, 1, PCI_REG_BAR0 + 8, bar2, 4);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_BAR0, 4), bar0);
	assert_int_equal(cfg_read(&f->pio, 1, PCI_REG_BAR0 + 8, 4), bar2);
	/* A second device gets the next, non-overlapping addresses. */
	struct counter c = {0};
	struct pci_device d2 = {
		.name = "second",
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = 0x10000,
			    .fn = count_access,
			    .opaque = &c},
	};
	assert_int_equal(pci_add_device(&f->pb, &d2), 0);
	uint32_t d2bar = cfg_read(&f->pio, d2.slot, PCI_REG_BAR0, 4);
	assert_true(d2bar >= bar0 + 0x1000);
	assert_int_equal(d2bar & 0xffff, 0);
	pci_remove_device(&d2);
	assert_int_equal(cfg_read(&f->pio, d2.slot, PCI_REG_VENDOR, 4), 0xffffffffu);
}

static void test_decoding(void **state)
{
	struct fixture *f = *state;
	uint32_t bar0 = cfg_read(&f->pio, 1, PCI_REG_BAR0, 4);
	uint16_t io = (uint16_t)(cfg_read(&f->pio, 1, PCI_REG_BAR0 + 8, 4) & ~3u);
	uint32_t v;
	/* Decoding is off after reset. */
	assert_false(mmio_access(&f->mmio, bar0, &v, 4, false));
	assert_int_equal(port_read(&f->pio, io, 1), 0xff);
	assert_int_equal(f->mem_hits.calls + f->io_hits.calls, 0);
	/* MEM on: the memory BAR answers, with offsets relative to its base. */
	cfg_write(&f->pio, 1, PCI_REG_COMMAND, PCI_CMD_MEM, 2);
	assert_true(mmio_access(&f->mmio, bar0 + 0x10, &v, 4, false));
	assert_int_equal(v, 0x5a5a5a5au);
	assert_int_equal(f->mem_hits.last_off, 0x10);
	assert_false(mmio_access(&f->mmio, bar0 + 0x1000, &v, 4, false)); /* past its end */
	assert_int_equal(port_read(&f->pio, io, 1), 0xff);		  /* IO still off */
	/* IO on as well. */
	cfg_write(&f->pio, 1, PCI_REG_COMMAND, PCI_CMD_MEM | PCI_CMD_IO, 2);
	assert_int_equal(port_read(&f->pio, (uint16_t)(io + 3), 1), 0x5a);
	assert_int_equal(f->io_hits.last_off, 3);
	/* Moving the BAR while decoding moves the range. */
	uint32_t moved = PCI_MMIO_WINDOW_START + 0x100000;
	cfg_write(&f->pio, 1, PCI_REG_BAR0, moved, 4);
	assert_false(mmio_access(&f->mmio, bar0, &v, 4, false));
	assert_true(mmio_access(&f->mmio, moved + 4, &v, 4, false));
	/* Sizing with decoding on (Linux turns it off first, a guest may not)
	 * maps the BAR at the top of the address space until it is restored. */
	cfg_write(&f->pio, 1, PCI_REG_BAR0, 0xffffffffu, 4);
	assert_true(mmio_access(&f->mmio, 0xfffff000u, &v, 4, false));
	cfg_write(&f->pio, 1, PCI_REG_BAR0, bar0, 4);
	assert_false(mmio_access(&f->mmio, 0xfffff000u, &v, 4, false));
	assert_true(mmio_access(&f->mmio, bar0, &v, 4, false));
	/* MEM off again: gone. */
	int calls = f->mem_hits.calls;
	cfg_write(&f->pio, 1, PCI_REG_COMMAND, 0, 2);
	assert_false(mmio_access(&f->mmio, bar0, &v, 4, false));
	assert_int_equal(f->mem_hits.calls, calls);
}

static void test_overlapping_bars(void **state)
{
	struct fixture *f = *state;
	struct counter c = {0};
	struct pci_device d2 = {
		.name = "second",
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = 0x1000,
			    .fn = count_access,
			    .opaque = &c},
	};
	assert_int_equal(pci_add_device(&f->pb, &d2), 0);
	uint32_t bar0 = cfg_read(&f->pio, 1, PCI_REG_BAR0, 4);
	uint32_t d2bar = cfg_read(&f->pio, d2.slot, PCI_REG_BAR0, 4);
	cfg_write(&f->pio, 1, PCI_REG_COMMAND, PCI_CMD_MEM, 2);
	cfg_write(&f->pio, d2.slot, PCI_REG_COMMAND, PCI_CMD_MEM, 2);
	/* The guest puts d2's BAR on top of the first device's: the first one
	 * keeps the range, d2 is not decoded until it moves away. */
	cfg_write(&f->pio, d2.slot, PCI_REG_BAR0, bar0, 4);
	uint32_t v;
	assert_true(mmio_access(&f->mmio, bar0, &v, 4, false));
	assert_int_equal(c.calls, 0);
	assert_int_equal(f->mem_hits.calls, 1);
	cfg_write(&f->pio, d2.slot, PCI_REG_BAR0, d2bar, 4);
	assert_true(mmio_access(&f->mmio, d2bar, &v, 4, false));
	assert_int_equal(c.calls, 1);
	/* Removing a device stops its decoding. */
	pci_remove_device(&d2);
	assert_false(mmio_access(&f->mmio, d2bar, &v, 4, false));
	assert_int_equal(cfg_read(&f->pio, d2.slot, PCI_REG_VENDOR, 2), 0xffff);
}

static void test_bad_devices(void **state)
{
	struct fixture *f = *state;
	struct counter c;
	struct pci_device bad = {
		.name = "bad",
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = 0x1800,
			    .fn = count_access,
			    .opaque = &c},
	};
	assert_int_equal(pci_add_device(&f->pb, &bad), -EINVAL); /* not a power of two */
	bad.bars[0].size = 0x800;
	assert_int_equal(pci_add_device(&f->pb, &bad), -EINVAL); /* below a page */
	bad.bars[0] = (struct pci_bar){.type = PCI_BAR_IO, .size = 0x1000, .fn = count_access};
	assert_int_equal(pci_add_device(&f->pb, &bad), -EINVAL); /* I/O BARs are <= 256 */
	bad.bars[0] = (struct pci_bar){.type = PCI_BAR_MEM32, .size = 0x1000};
	assert_int_equal(pci_add_device(&f->pb, &bad), -EINVAL); /* no handler */
	/* The MMIO window fills up: the whole window, then one page more. */
	struct pci_device big = {
		.name = "big",
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = PCI_MMIO_WINDOW_SIZE,
			    .fn = count_access},
	};
	assert_int_equal(pci_add_device(&f->pb, &big), -ENOSPC);
	/* Slots fill up: 30 more fit after the bridge and the test device. */
	static struct pci_device many[31];
	for (int i = 0; i < 31; i++) {
		many[i] = (struct pci_device){.name = "many"};
		assert_int_equal(pci_add_device(&f->pb, &many[i]), i < 30 ? 0 : -ENOSPC);
	}
	assert_int_equal(cfg_read(&f->pio, 31, PCI_REG_VENDOR, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_address_latch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_there, setup, teardown),
		cmocka_unit_test_setup_teardown(test_narrow_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_placement_and_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decoding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_bars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_devices, setup, teardown),
	};
	return cmocka_run_group_tests_name("pci", tests, NULL, NULL);
}
