/* Fuzz target: PCI configuration space (src/devices/pci.c) and the BAR
 * decoding that follows from it, on bus 0 as `wisp run --rng-device` builds
 * it (the host bridge and the RNG device, attached with rng_attach to a VM
 * that has only its two buses), driven the way a guest drives it.
 *
 * Input: up to 64 commands of 7 bytes, op u8, a u8, b u8, v u32 (little endian);
 * b & 3 is the width (1, 2, 4, 4 bytes), b & 4 a write (of v):
 *   op % 4 == 0  an access to port 0xCF8 + a % 8
 *   op % 4 == 1  a config access as drivers do it: CONFIG_ADDRESS for slot
 *                a % 32, then 0xCFC + reg % 4, for register
 *                (b >> 3) * 4 + (a >> 5) % 4 (the header's 128 bytes)
 *   op % 4 == 2  an MMIO access at address v (BARs and whatever else),
 *                writing a
 *   op % 4 == 3  snapshot: every device's state saved, byte a XORed in at
 *                offset v % length, cut to b * 16 bytes if b, then restored
 *                into the live devices (which may refuse it)
 * Checked after every command: bits a write may not change are unchanged;
 * a BAR is decoded exactly where its register points while its decode bit
 * is on, and never when it is off; the buses hold nothing else; a config
 * read returns what config space holds.
 *
 * Speed (issue 17): a snapshot is saved into one buffer kept from input to
 * input (its state, not the buffer, is what is fuzzed); ASan records 4
 * frames per allocation and keeps 32 MiB of freed blocks in quarantine
 * (see __asan_default_options). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "pci: %s (line %d)\n", #cond, __LINE__);                   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static struct vm vm;
static struct pci_bus *pb;
static uint8_t fixed[PCI_MAX_SLOTS][PCI_CFG_SPACE]; /* config space as built */
static const uint32_t seed = 42;

__attribute__((no_sanitize("coverage"), noinline)) static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void io(struct bus *bus, uint64_t addr, uint32_t len, bool write, uint32_t v)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	bus_dispatch(bus, NULL, addr, d, len, write);
}

__attribute__((no_sanitize("coverage"), noinline)) static bool on_bus(const struct bus *bus,
								      uint64_t base, uint64_t len)
{
	for (int i = 0; i < bus->nr; i++)
		if (bus->ranges[i].base == base && bus->ranges[i].len == len)
			return true;
	return false;
}

/* Whether config space now differs from was outside the bits mask lets a
 * write change, a word at a time. Not instrumented for ASan either (each
 * word was 3 checks): check() reads the same device with ASan just after. */
__attribute__((no_sanitize("coverage", "address"), noinline)) static bool
fixed_bits_changed(const uint8_t *now, const uint8_t *was, const uint8_t *mask)
{
	uint64_t diff = 0;
	for (int k = 0; k < PCI_CFG_SPACE; k += 8) {
		uint64_t n, w, m;
		memcpy(&n, now + k, 8);
		memcpy(&w, was + k, 8);
		memcpy(&m, mask + k, 8);
		diff |= (n ^ w) & ~m;
	}
	return diff != 0;
}

/* Not instrumented for coverage: the checks' compares would steer the
 * fuzzer and cost 2/3 of its time. */
__attribute__((no_sanitize("coverage"), noinline)) static void check(void)
{
	int pio = 2, mmio = 0; /* 0xCF8 and 0xCFC */
	for (int s = 0; s < PCI_MAX_SLOTS; s++) {
		const struct pci_device *d = pb->slots[s];
		if (!d)
			continue;
		CHECK(!fixed_bits_changed(d->cfg, fixed[s], d->wmask));
		uint16_t cmd =
			(uint16_t)(d->cfg[PCI_REG_COMMAND] | d->cfg[PCI_REG_COMMAND + 1] << 8);
		for (int i = 0; i < PCI_NR_BARS; i++) {
			const struct pci_bar *b = &d->bars[i];
			if (b->type == PCI_BAR_NONE)
				continue;
			bool io = b->type == PCI_BAR_IO;
			uint32_t reg = get32(&d->cfg[PCI_REG_BAR0 + 4 * i]);
			uint64_t at = io ? (reg & 0xfffcu) : (reg & 0xfffffff0u);
			CHECK(!b->mapped || (cmd & (io ? PCI_CMD_IO : PCI_CMD_MEM)));
			CHECK(!b->mapped || b->base == at);
			CHECK(!b->mapped || on_bus(io ? &vm.pio : &vm.mmio, at, b->size));
			CHECK((at & (b->size - 1)) == 0); /* the size bits read as 0 */
			if (b->mapped)
				*(io ? &pio : &mmio) += 1;
		}
	}
	CHECK(vm.pio.nr == pio);
	CHECK(vm.mmio.nr == mmio);
	/* What a guest reads is config space, through the ports. */
	uint32_t a = pb->cfg_addr, v = 0;
	uint8_t d[4];
	bus_dispatch(&vm.pio, NULL, PCI_CFG_ADDR_PORT, d, 4, false);
	memcpy(&v, d, 4);
	CHECK(v == a);
	const struct pci_device *sel =
		(a & PCI_CFG_ADDR_ENABLE) && !(a & 0x00ff0700u) ? pb->slots[(a >> 11) & 31] : NULL;
	bus_dispatch(&vm.pio, NULL, PCI_CFG_DATA_PORT, d, 4, false);
	memcpy(&v, d, 4);
	CHECK(v == (sel ? get32(&sel->cfg[a & 0xfc]) : 0xffffffffu));
}

/* Save every device, damage the state, restore it into the live devices.
 * The buffer stays allocated: emptied, not freed, between saves. */
static void snapshot(uint8_t x, uint8_t cut, uint32_t off)
{
	static struct wbuf w;
	for (struct device *dev = vm.devices; dev; dev = dev->next) {
		w.len = 0;
		uint32_t version = 0;
		char err[256];
		CHECK(dev->ops->save && dev->ops->save(dev->opaque, &w, &version) == 0 &&
		      !wbuf_error(&w));
		size_t len = w.len;
		if (len)
			w.p[off % len] ^= x;
		if (cut && (size_t)cut * 16 < len)
			len = (size_t)cut * 16;
		if (dev->ops->restore(dev->opaque, w.p, len, version, err, sizeof(err)))
			CHECK(err[0]);
	}
}

/* 4 frames recorded per allocation, not 30 (a report still has its full
 * stack; where a block was allocated or freed shows 4 frames). A quarantine
 * of 32 MiB, not 256: freed blocks are still kept for dozens of inputs (an
 * input frees at most 2 MiB), and memory is reused while in cache instead
 * of faulting in fresh pages. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "malloc_context_size=4:quarantine_size_mb=32";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&vm, 0, sizeof(vm));
	vm.fd = -1;
	if (bus_init(&vm.pio) || bus_init(&vm.mmio) || rng_attach(&vm, &seed) ||
	    pci_bus_get(&vm, &pb))
		abort();
	for (int s = 0; s < PCI_MAX_SLOTS; s++)
		if (pb->slots[s])
			memcpy(fixed[s], pb->slots[s]->cfg, PCI_CFG_SPACE);
	static const uint32_t widths[] = {1, 2, 4, 4};
	/* At most 64 accesses: longer inputs explore little more, and each
	 * access is checked over the whole bus. */
	for (int nr = 0; size >= 7 && nr < 64; data += 7, size -= 7, nr++) {
		uint8_t op = data[0], a = data[1], b = data[2];
		uint32_t v;
		memcpy(&v, data + 3, 4);
		uint32_t len = widths[b & 3];
		bool write = b & 4;
		switch (op % 4) {
		case 0:
			io(&vm.pio, PCI_CFG_ADDR_PORT + a % 8u, len, write, v);
			break;
		case 1: {
			uint32_t reg = (uint32_t)(b >> 3) * 4 + (a >> 5) % 4u;
			io(&vm.pio, PCI_CFG_ADDR_PORT, 4, true,
			   PCI_CFG_ADDR_ENABLE | (uint32_t)(a % 32) << 11 | (reg & 0xfc));
			io(&vm.pio, PCI_CFG_DATA_PORT + (reg & 3), len, write, v);
			break;
		}
		case 2:
			io(&vm.mmio, v, len, write, a);
			break;
		case 3:
			snapshot(a, b, v);
			break;
		}
		check();
	}
	while (vm.devices) { /* as vm_destroy does */
		struct device *d = vm.devices;
		vm.devices = d->next;
		d->ops->destroy(d->opaque);
		free(d);
	}
	CHECK(vm.pio.nr == 0 && vm.mmio.nr == 0);
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	return 0;
}
