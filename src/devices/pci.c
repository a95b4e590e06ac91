/* PCI bus 0: configuration mechanism #1, a host bridge, and BARs that the
 * VMM places like firmware would and the guest may move.
 *
 * Config space is an image (cfg[]) plus a mask of the bits a write may change
 * (wmask[]): read-only fields, BAR size bits and reserved registers all fall
 * out of the mask, so a write of anything anywhere has a defined result.
 * After every config write the BARs are re-mapped from the command register
 * and the BAR registers, which is the only state that decides decoding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "devices/pci.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define CFG_ADDR_MASK 0x80fffffcu /* enable, bus, device, function, register */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool bar_valid(const struct pci_bar *b)
{
	if (b->type == PCI_BAR_NONE)
		return true;
	if (!b->fn || !b->size || (b->size & (b->size - 1)))
		return false;
	if (b->type == PCI_BAR_MEM32)
		return b->size >= 4096 && b->size <= PCI_MMIO_WINDOW_SIZE;
	return b->type == PCI_BAR_IO && b->size >= 4 && b->size <= 256;
}

/* Where BAR i currently points, from the config image. */
static uint64_t bar_address(const struct pci_device *d, int i)
{
	uint32_t v = get32(&d->cfg[PCI_REG_BAR0 + 4 * i]);
	return d->bars[i].type == PCI_BAR_IO ? (v & 0xfffcu) : (v & 0xfffffff0u);
}

/* Make the bus mappings match the config image. A BAR is decoded when its
 * decode bit is on; one that would overlap another range (a guest putting two
 * BARs on top of each other) is simply not decoded until it moves. A BAR over
 * RAM is harmless: KVM serves RAM before any MMIO exit reaches us. */
static void remap_bars(struct pci_bus *pb, struct pci_device *d)
{
	uint16_t cmd = (uint16_t)(d->cfg[PCI_REG_COMMAND] | d->cfg[PCI_REG_COMMAND + 1] << 8);
	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		if (b->type == PCI_BAR_NONE)
			continue;
		bool io = b->type == PCI_BAR_IO;
		struct bus *bus = io ? pb->pio : pb->mmio;
		bool want = cmd & (io ? PCI_CMD_IO : PCI_CMD_MEM);
		uint64_t base = bar_address(d, i);
		if (b->mapped && (!want || b->base != base)) {
			bus_unregister(bus, b->base);
			b->mapped = false;
		}
		if (want && !b->mapped &&
		    bus_register(bus, base, b->size, b->fn, b->opaque, d->name) == 0) {
			b->mapped = true;
			b->base = base;
		}
	}
}

/* Fill the type-0 header of d and say which bits are writable. */
static void build_header(struct pci_device *d)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	put16(&d->cfg[PCI_REG_VENDOR], d->vendor_id);
	put16(&d->cfg[PCI_REG_DEVICE], d->device_id);
	d->cfg[PCI_REG_REVISION] = d->revision;
	d->cfg[PCI_REG_CLASS] = (uint8_t)d->class_code;
	d->cfg[PCI_REG_CLASS + 1] = (uint8_t)(d->class_code >> 8);
	d->cfg[PCI_REG_CLASS + 2] = (uint8_t)(d->class_code >> 16);
	d->cfg[PCI_REG_HEADER_TYPE] = 0; /* type 0, single function */
	put16(&d->cfg[PCI_REG_SUBSYS_VEND], d->subsys_vendor_id);
	put16(&d->cfg[PCI_REG_SUBSYS_ID], d->subsys_id);
	/* No interrupt pin: none of our PCI devices raises INTx (yet). */
	d->cfg[PCI_REG_INT_PIN] = 0;
	put16(&d->wmask[PCI_REG_COMMAND],
	      PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
	d->wmask[PCI_REG_CACHE_LINE] = 0xff; /* scratch registers for the OS */
	d->wmask[PCI_REG_LATENCY] = 0xff;
	d->wmask[PCI_REG_INT_LINE] = 0xff;
	for (int i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];
		uint8_t *c = &d->cfg[PCI_REG_BAR0 + 4 * i];
		uint8_t *m = &d->wmask[PCI_REG_BAR0 + 4 * i];
		/* The size bits read back as 0 after writing all ones: that is
		 * how a guest sizes a BAR. */
		if (b->type == PCI_BAR_MEM32) {
			put32(m, ~(b->size - 1));
		} else if (b->type == PCI_BAR_IO) {
			put32(m, 0xffffu & ~(b->size - 1));
			put32(c, PCI_BAR_IO_FLAG);
		}
	}
}

/* Give each BAR a naturally aligned address in its window. */
static int place_bars(struct pci_bus *pb, struct pci_device *d)
{
	uint64_t mmio = pb->next_mmio, io = pb->next_io;
	for (int i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];
		uint64_t *next = b->type == PCI_BAR_IO ? &io : &mmio;
		uint64_t end = b->type == PCI_BAR_IO ? PCI_IO_WINDOW_START + PCI_IO_WINDOW_SIZE
						     : PCI_MMIO_WINDOW_START + PCI_MMIO_WINDOW_SIZE;
		if (b->type == PCI_BAR_NONE)
			continue;
		uint64_t base = (*next + b->size - 1) & ~((uint64_t)b->size - 1);
		if (base + b->size > end)
			return -ENOSPC;
		uint8_t *c = &d->cfg[PCI_REG_BAR0 + 4 * i];
		put32(c, (uint32_t)base | get32(c));
		*next = base + b->size;
	}
	pb->next_mmio = mmio;
	pb->next_io = io;
	return 0;
}

/* The function CONFIG_ADDRESS selects, or NULL (bus other than 0, function
 * other than 0, empty slot, or the enable bit clear). */
static struct pci_device *selected(struct pci_bus *pb)
{
	uint32_t a = pb->cfg_addr;
	if (!(a & PCI_CFG_ADDR_ENABLE) || ((a >> 16) & 0xff) || ((a >> 8) & 7))
		return NULL;
	return pb->slots[(a >> 11) & 0x1f];
}

/* 0xCF8: only whole 32-bit accesses reach the latch. Narrower ones are what
 * configuration mechanism #2 would use; ignoring them makes its probe fail,
 * as it should on a mechanism-#1-only bridge. */
static void cfg_addr_access(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data,
			    uint32_t len, bool is_write)
{
	struct pci_bus *pb = opaque;
	pthread_mutex_lock(&pb->lock);
	if (len == 4 && off == 0) {
		if (is_write)
			pb->cfg_addr = get32(data) & CFG_ADDR_MASK;
		else
			put32(data, pb->cfg_addr);
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	pthread_mutex_unlock(&pb->lock);
}

/* 0xCFC-0xCFF: a 1-, 2- or 4-byte window onto the selected dword. The bus
 * guarantees off + len <= 4, so reg + off + len never leaves the 256 bytes. */
static void cfg_data_access(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data,
			    uint32_t len, bool is_write)
{
	struct pci_bus *pb = opaque;
	pthread_mutex_lock(&pb->lock);
	struct pci_device *d = selected(pb);
	uint32_t reg = (pb->cfg_addr & 0xfc) + (uint32_t)off;
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len); /* master abort */
	} else if (!is_write) {
		memcpy(data, &d->cfg[reg], len);
	} else {
		for (uint32_t i = 0; i < len; i++)
			d->cfg[reg + i] = (uint8_t)((d->cfg[reg + i] & ~d->wmask[reg + i]) |
						    (data[i] & d->wmask[reg + i]));
		remap_bars(pb, d);
	}
	pthread_mutex_unlock(&pb->lock);
}

int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio)
{
	memset(pb, 0, sizeof(*pb));
	pthread_mutex_init(&pb->lock, NULL);
	pb->pio = pio;
	pb->mmio = mmio;
	pb->next_mmio = PCI_MMIO_WINDOW_START;
	pb->next_io = PCI_IO_WINDOW_START;
	int r = bus_register(pio, PCI_CFG_ADDR_PORT, 4, cfg_addr_access, pb, "pci-config-address");
	if (r)
		return r;
	r = bus_register(pio, PCI_CFG_DATA_PORT, 4, cfg_data_access, pb, "pci-config-data");
	if (r) {
		bus_unregister(pio, PCI_CFG_ADDR_PORT);
		return r;
	}
	pb->ports_registered = true;
	/* A class 0x0600 function at 00:00.0 is what Linux's pci_sanity_check
	 * looks for before it trusts mechanism #1. */
	pb->bridge = (struct pci_device){
		.name = "pci-host-bridge",
		.vendor_id = PCI_VENDOR_WISP,
		.device_id = PCI_DEVICE_WISP_BRIDGE,
		.subsys_vendor_id = PCI_VENDOR_WISP,
		.subsys_id = PCI_DEVICE_WISP_BRIDGE,
		.class_code = PCI_CLASS_HOST_BRIDGE,
	};
	return pci_add_device(pb, &pb->bridge);
}

/* Stop decoding d's BARs. Called with the lock held. */
static void unmap_bars(struct pci_bus *pb, struct pci_device *d)
{
	for (int i = 0; i < PCI_NR_BARS; i++)
		if (d->bars[i].mapped) {
			bool io = d->bars[i].type == PCI_BAR_IO;
			bus_unregister(io ? pb->pio : pb->mmio, d->bars[i].base);
			d->bars[i].mapped = false;
		}
}

void pci_bus_destroy(struct pci_bus *pb)
{
	for (int s = 0; s < PCI_MAX_SLOTS; s++)
		if (pb->slots[s]) {
			unmap_bars(pb, pb->slots[s]);
			pb->slots[s]->bus = NULL;
			pb->slots[s] = NULL;
		}
	if (pb->ports_registered) {
		bus_unregister(pb->pio, PCI_CFG_ADDR_PORT);
		bus_unregister(pb->pio, PCI_CFG_DATA_PORT);
		pb->ports_registered = false;
	}
	pthread_mutex_destroy(&pb->lock);
}

void pci_remove_device(struct pci_device *dev)
{
	struct pci_bus *pb = dev->bus;
	if (!pb)
		return;
	pthread_mutex_lock(&pb->lock);
	unmap_bars(pb, dev);
	if (pb->slots[dev->slot] == dev)
		pb->slots[dev->slot] = NULL;
	dev->bus = NULL;
	pthread_mutex_unlock(&pb->lock);
}

int pci_add_device(struct pci_bus *pb, struct pci_device *dev)
{
	for (int i = 0; i < PCI_NR_BARS; i++)
		if (!bar_valid(&dev->bars[i]))
			return -EINVAL;
	pthread_mutex_lock(&pb->lock);
	int slot = 0;
	while (slot < PCI_MAX_SLOTS && pb->slots[slot])
		slot++;
	int r = -ENOSPC;
	if (slot < PCI_MAX_SLOTS) {
		build_header(dev);
		r = place_bars(pb, dev);
	}
	if (!r) {
		for (int i = 0; i < PCI_NR_BARS; i++)
			dev->bars[i].mapped = false;
		dev->bus = pb;
		dev->slot = slot;
		pb->slots[slot] = dev;
	}
	pthread_mutex_unlock(&pb->lock);
	return r;
}

/* The bus's snapshot state (version 1): the config-address latch and each
 * slot's config space; BAR mappings follow from them. */
struct pci_state_v1 {
	uint32_t cfg_addr;
	uint32_t present; /* bit per slot */
	uint8_t cfg[PCI_MAX_SLOTS][PCI_CFG_SPACE];
};

static int pci_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	struct pci_bus *pb = opaque;
	struct pci_state_v1 *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&pb->lock);
	st->cfg_addr = pb->cfg_addr;
	for (int i = 0; i < PCI_MAX_SLOTS; i++)
		if (pb->slots[i]) {
			st->present |= 1u << i;
			memcpy(st->cfg[i], pb->slots[i]->cfg, PCI_CFG_SPACE);
		}
	pthread_mutex_unlock(&pb->lock);
	wbuf_put(out, st, sizeof(*st));
	free(st);
	*version = 1;
	return 0;
}

static int pci_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen)
{
	struct pci_bus *pb = opaque;
	int r = device_state_check("state", version, len, 1, sizeof(struct pci_state_v1), false,
				   err, errlen);
	if (r)
		return r;
	struct pci_state_v1 *st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	memcpy(st, buf, sizeof(*st));
	pthread_mutex_lock(&pb->lock);
	for (int i = 0; i < PCI_MAX_SLOTS && !r; i++) {
		struct pci_device *d = pb->slots[i];
		bool saved = st->present & (1u << i);
		if (!d != !saved || (d && memcmp(st->cfg[i], d->cfg, 4))) {
			snprintf(err, errlen, "slot %d holds another device than in the snapshot",
				 i);
			r = -EINVAL;
		}
	}
	if (!r) {
		pb->cfg_addr = st->cfg_addr & CFG_ADDR_MASK;
		/* Only what the guest could have written changes: the rest of
		 * the header is ours and stays as this VMM built it. */
		for (int i = 0; i < PCI_MAX_SLOTS; i++) {
			struct pci_device *d = pb->slots[i];
			if (!d)
				continue;
			for (int k = 0; k < PCI_CFG_SPACE; k++)
				d->cfg[k] = (uint8_t)((d->cfg[k] & ~d->wmask[k]) |
						      (st->cfg[i][k] & d->wmask[k]));
			remap_bars(pb, d);
		}
	}
	pthread_mutex_unlock(&pb->lock);
	free(st);
	return r;
}

static void pci_bus_free(void *opaque)
{
	pci_bus_destroy(opaque);
	free(opaque);
}

static const struct device_ops pci_ops = {
	.name = "pci",
	.destroy = pci_bus_free,
	.save = pci_save,
	.restore = pci_restore,
};

int pci_bus_get(struct vm *vm, struct pci_bus **out)
{
	struct device *d = vm_find_device(vm, "pci");
	if (d) {
		*out = d->opaque;
		return 0;
	}
	struct pci_bus *pb = malloc(sizeof(*pb));
	if (!pb)
		return -ENOMEM;
	int r = pci_bus_init(pb, &vm->pio, &vm->mmio);
	if (!r && !vm_add_device(vm, &pci_ops, pb))
		r = -ENOMEM;
	if (r) {
		pci_bus_free(pb);
		return r;
	}
	*out = pb;
	return 0;
}
