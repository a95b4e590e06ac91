/* PCI for unikernel applications: enumerate bus 0 through configuration
 * mechanism #1 (ports 0xCF8/0xCFC), read and size BARs, turn on decoding.
 * Works under Wisp (docs/pci.md) and under any VMM or firmware that offers
 * mechanism #1. Applications run at CPL3 with I/O ports allowed, and every
 * BAR in the MMIO hole below 4 GiB is identity-mapped, so a memory BAR's
 * address can be used as a pointer. */
#ifndef WRT_PCI_H
#define WRT_PCI_H

#include <stdint.h>

#define RT_PCI_CMD_IO  0x0001
#define RT_PCI_CMD_MEM 0x0002

/* One function found on bus 0. */
struct rt_pci_dev {
	uint8_t slot, fn;
	uint16_t vendor, device;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
};

/* A BAR after sizing. */
struct rt_pci_bar {
	uint64_t addr; /* bus address (the guest-physical address for memory) */
	uint64_t size; /* 0: BAR not implemented */
	int is_io;
	int is_64; /* a 64-bit memory BAR (it also uses the next slot) */
};

/* True if a mechanism-#1 host bridge answers (CONFIG_ADDRESS reads back). */
int rt_pci_present(void);
/* Fill out[0..max) with the functions on bus 0; returns how many exist
 * (may exceed max), 0 without PCI. */
int rt_pci_scan(struct rt_pci_dev *out, int max);
/* Find the first function with these IDs; 0 if found, -1 if not. */
int rt_pci_find(uint16_t vendor, uint16_t device, struct rt_pci_dev *out);
/* Config space access; reg is a byte offset, aligned to the access size. */
uint32_t rt_pci_read32(const struct rt_pci_dev *d, uint8_t reg);
uint16_t rt_pci_read16(const struct rt_pci_dev *d, uint8_t reg);
void rt_pci_write32(const struct rt_pci_dev *d, uint8_t reg, uint32_t v);
void rt_pci_write16(const struct rt_pci_dev *d, uint8_t reg, uint16_t v);
/* Read BAR i's address and size (sizing turns decoding off for a moment and
 * restores the BAR); -1 for a bad index or the upper half of a 64-bit BAR. */
int rt_pci_bar(const struct rt_pci_dev *d, int i, struct rt_pci_bar *out);
/* Set bits (RT_PCI_CMD_*) in the command register. */
void rt_pci_enable(const struct rt_pci_dev *d, uint16_t bits);

#endif
