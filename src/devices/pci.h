/* The PCI layer: one bus (bus 0) behind a host bridge, reached through
 * configuration mechanism #1 (ports 0xCF8/0xCFC), with the VMM acting as the
 * firmware that sizes and places BARs. Devices embed a struct pci_device,
 * fill in its identity and BARs, and add themselves; their BARs then appear
 * on the VM's MMIO (or port) bus whenever the guest enables decoding.
 * docs/pci.md describes what a guest sees. */
#ifndef WISP_PCI_H
#define WISP_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/devices.h"

#define PCI_CFG_ADDR_PORT 0xcf8 /* CONFIG_ADDRESS, 32-bit */
#define PCI_CFG_DATA_PORT 0xcfc /* CONFIG_DATA, 1/2/4-byte windows */
#define PCI_CFG_SPACE	  256	/* bytes of config space per function */
#define PCI_MAX_SLOTS	  32	/* device numbers on bus 0; function 0 only */
#define PCI_NR_BARS	  6

/* Where the VMM places BARs. The MMIO window is the bottom of the x86 MMIO
 * hole (RAM below 4 GiB ends at 0xC0000000, so this range is never RAM in
 * any e820 map); 0xD0000000 and up is left to other devices. The port window
 * sits above the legacy ISA ports. */
#define PCI_MMIO_WINDOW_START 0xc0000000u
#define PCI_MMIO_WINDOW_SIZE  0x10000000u
#define PCI_IO_WINDOW_START   0xc000u
#define PCI_IO_WINDOW_SIZE    0x4000u

/* Identity of Wisp's own PCI functions (docs/pci.md explains the choice). */
#define PCI_VENDOR_WISP	       0x1234
#define PCI_DEVICE_WISP_BRIDGE 0x5700 /* the host bridge */
#define PCI_DEVICE_WISP_RNG    0x5701 /* the course's RNG device */
#define PCI_CLASS_HOST_BRIDGE  0x060000
#define PCI_CLASS_OTHER_CRYPTO 0x108000 /* encryption controller, other */

/* Config-space offsets and bits of a type-0 header used here. */
#define PCI_REG_VENDOR	    0x00
#define PCI_REG_DEVICE	    0x02
#define PCI_REG_COMMAND	    0x04
#define PCI_REG_STATUS	    0x06
#define PCI_REG_REVISION    0x08
#define PCI_REG_CLASS	    0x09 /* prog-if, subclass, class: 3 bytes */
#define PCI_REG_CACHE_LINE  0x0c
#define PCI_REG_LATENCY	    0x0d
#define PCI_REG_HEADER_TYPE 0x0e
#define PCI_REG_BAR0	    0x10
#define PCI_REG_SUBSYS_VEND 0x2c
#define PCI_REG_SUBSYS_ID   0x2e
#define PCI_REG_INT_LINE    0x3c
#define PCI_REG_INT_PIN	    0x3d

#define PCI_CMD_IO	    0x0001
#define PCI_CMD_MEM	    0x0002
#define PCI_CMD_MASTER	    0x0004
#define PCI_CMD_INTX_OFF    0x0400
#define PCI_BAR_IO_FLAG	    0x1 /* bit 0 of an I/O BAR */
#define PCI_CFG_ADDR_ENABLE 0x80000000u

struct pci_bus;

enum pci_bar_type {
	PCI_BAR_NONE = 0,
	PCI_BAR_MEM32, /* 32-bit, non-prefetchable memory */
	PCI_BAR_IO,    /* port I/O */
};

/* One BAR as the device describes it, and where it is decoded now. */
struct pci_bar {
	enum pci_bar_type type;
	uint32_t size;	/* power of two; memory >= 4 KiB, I/O 4..256 */
	bus_handler fn; /* gets offsets relative to the BAR's base */
	void *opaque;
	bool mapped; /* registered on a bus at `base` */
	uint64_t base;
};

/* A PCI function. The device fills in the fields above the line before
 * pci_add_device(); the bus owns the rest. */
struct pci_device {
	const char *name;
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	uint8_t revision;
	struct pci_bar bars[PCI_NR_BARS];
	/* ---- owned by the bus ---- */
	struct pci_bus *bus;
	int slot;
	uint8_t cfg[PCI_CFG_SPACE];   /* what config reads return */
	uint8_t wmask[PCI_CFG_SPACE]; /* bits a config write may change */
};

/* Bus 0: the config-address latch, the functions in their slots, and the
 * next free addresses of the BAR windows. */
struct pci_bus {
	pthread_mutex_t lock; /* guards cfg_addr, every cfg[] and BAR mapping */
	struct bus *pio, *mmio;
	uint32_t cfg_addr;
	struct pci_device *slots[PCI_MAX_SLOTS];
	struct pci_device bridge;
	uint64_t next_mmio, next_io;
	bool ports_registered;
};

struct vm;

/* --- pci.c ------------------------------------------------------------- */
/* Set up bus 0 with its host bridge in slot 0 and claim 0xCF8/0xCFC on pio;
 * BARs will be decoded on mmio and pio. */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio);
/* Unmap every BAR, detach the devices still on the bus (they stay
 * allocated) and release the config ports. */
void pci_bus_destroy(struct pci_bus *pb);
/* Put dev in the first free slot, build its config header and place its
 * BARs in the windows (decoding stays off until the guest sets the command
 * bits). -EINVAL for a malformed BAR, -ENOSPC when slots or windows are full. */
int pci_add_device(struct pci_bus *pb, struct pci_device *dev);
/* Take dev off the bus: its BARs stop decoding and its slot reads as empty.
 * A device calls this before it frees itself. */
void pci_remove_device(struct pci_device *dev);
/* The VM's PCI bus, created (and attached to the VM) on first use. */
int pci_bus_get(struct vm *vm, struct pci_bus **out);

#endif
