/* Finding the course's RNG device from a unikernel (shared by the rng apps).
 * Like any driver it checks what the device claims before using it: the IDs,
 * a memory BAR0 large enough for the registers, placed in the MMIO hole
 * below 4 GiB (never RAM, and identity-mapped for the application). */
#ifndef RNG_DEV_H
#define RNG_DEV_H

#include "wrt.h"
#include "wrt_pci.h"

#define RNG_VENDOR   0x1234
#define RNG_DEVICE   0x5701
#define RNG_REG_RNG  0x0 /* read: the next 32-bit number */
#define RNG_REG_SEED 0x4 /* write: seed the generator */
#define RNG_REGS_END 0x8

/* The guest-physical MMIO hole of the Wisp x86 layout. */
#define MMIO_HOLE_START 0xc0000000ull
#define MMIO_HOLE_END	0x100000000ull

/* BAR0 of the RNG device with memory decoding on, or 0 after printing why
 * not. */
static inline uintptr_t rng_open(void)
{
	struct rt_pci_dev d;
	struct rt_pci_bar bar;
	if (!rt_pci_present()) {
		rt_puts("rng: no PCI bus (start wisp with --rng-device)");
		return 0;
	}
	if (rt_pci_find(RNG_VENDOR, RNG_DEVICE, &d)) {
		rt_puts("rng: no RNG device on the PCI bus (start wisp with --rng-device)");
		return 0;
	}
	if (rt_pci_bar(&d, 0, &bar) || bar.is_io || bar.size < RNG_REGS_END) {
		rt_printf("rng: device %02x.%x: BAR0 is not a memory BAR of at least %u bytes\n",
			  d.slot, d.fn, RNG_REGS_END);
		return 0;
	}
	if (bar.addr < MMIO_HOLE_START || bar.addr >= MMIO_HOLE_END ||
	    bar.size > MMIO_HOLE_END - bar.addr) {
		rt_printf("rng: BAR0 at 0x%lx (+0x%lx) lies outside the MMIO hole\n",
			  (unsigned long)bar.addr, (unsigned long)bar.size);
		return 0;
	}
	rt_pci_enable(&d, RT_PCI_CMD_MEM);
	return (uintptr_t)bar.addr;
}

static inline uint32_t rng_read(uintptr_t bar)
{
	return *(volatile uint32_t *)(bar + RNG_REG_RNG);
}

static inline void rng_seed(uintptr_t bar, uint32_t seed)
{
	*(volatile uint32_t *)(bar + RNG_REG_SEED) = seed;
}

#endif
