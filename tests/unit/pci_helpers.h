/* Config-space access for unit tests, done the way a guest does it: a 32-bit
 * write of the address to 0xCF8, then an access at 0xCFC + (reg & 3), both
 * through the port bus's dispatch (so the tests cover the decoder itself). */
#ifndef TEST_PCI_HELPERS_H
#define TEST_PCI_HELPERS_H

#include <string.h>

#include "devices/pci.h"

static inline uint32_t cfg_address(int slot, int fn, int reg)
{
	return PCI_CFG_ADDR_ENABLE | (uint32_t)slot << 11 | (uint32_t)fn << 8 |
	       ((uint32_t)reg & 0xfc);
}

static inline void port_write(struct bus *pio, uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4];
	memcpy(d, &v, 4);
	bus_dispatch(pio, NULL, port, d, len, true);
}

static inline uint32_t port_read(struct bus *pio, uint16_t port, uint32_t len)
{
	uint8_t d[4] = {0};
	uint32_t v = 0;
	bus_dispatch(pio, NULL, port, d, len, false);
	memcpy(&v, d, len);
	return v;
}

static inline uint32_t cfg_read(struct bus *pio, int slot, int reg, uint32_t len)
{
	port_write(pio, PCI_CFG_ADDR_PORT, cfg_address(slot, 0, reg), 4);
	return port_read(pio, (uint16_t)(PCI_CFG_DATA_PORT + (reg & 3)), len);
}

static inline void cfg_write(struct bus *pio, int slot, int reg, uint32_t v, uint32_t len)
{
	port_write(pio, PCI_CFG_ADDR_PORT, cfg_address(slot, 0, reg), 4);
	port_write(pio, (uint16_t)(PCI_CFG_DATA_PORT + (reg & 3)), v, len);
}

/* MMIO through the bus; returns false if nothing claimed the address. */
static inline bool mmio_access(struct bus *mmio, uint64_t addr, void *buf, uint32_t len,
			       bool is_write)
{
	return bus_dispatch(mmio, NULL, addr, buf, len, is_write);
}

#endif
