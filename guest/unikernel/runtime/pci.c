/* PCI configuration mechanism #1 from a unikernel: an address written to
 * 0xCF8 picks bus/device/function/register, the data moves through
 * 0xCFC-0xCFF. The runtime has one vCPU and no interrupts, so the two-step
 * access needs no lock. */
#include "rt.h"
#include "wrt_pci.h"

#define CFG_ADDR	0xcf8
#define CFG_DATA	0xcfc
#define CFG_ENABLE	0x80000000u
#define REG_VENDOR	0x00
#define REG_COMMAND	0x04
#define REG_CLASS_REV	0x08
#define REG_HEADER_TYPE 0x0e
#define REG_BAR0	0x10
#define NR_BARS		6

static void select_reg(uint8_t slot, uint8_t fn, uint8_t reg)
{
	outl(CFG_ADDR, CFG_ENABLE | (uint32_t)slot << 11 | (uint32_t)fn << 8 | (reg & 0xfcu));
}

static uint32_t read32(uint8_t slot, uint8_t fn, uint8_t reg)
{
	select_reg(slot, fn, reg);
	return inl(CFG_DATA);
}

uint32_t rt_pci_read32(const struct rt_pci_dev *d, uint8_t reg)
{
	return read32(d->slot, d->fn, reg);
}

uint16_t rt_pci_read16(const struct rt_pci_dev *d, uint8_t reg)
{
	select_reg(d->slot, d->fn, reg);
	return inw((uint16_t)(CFG_DATA + (reg & 2)));
}

void rt_pci_write32(const struct rt_pci_dev *d, uint8_t reg, uint32_t v)
{
	select_reg(d->slot, d->fn, reg);
	outl(CFG_DATA, v);
}

void rt_pci_write16(const struct rt_pci_dev *d, uint8_t reg, uint16_t v)
{
	select_reg(d->slot, d->fn, reg);
	outw((uint16_t)(CFG_DATA + (reg & 2)), v);
}

int rt_pci_present(void)
{
	uint32_t old = inl(CFG_ADDR);
	outl(CFG_ADDR, CFG_ENABLE);
	int ok = inl(CFG_ADDR) == CFG_ENABLE;
	outl(CFG_ADDR, old);
	return ok;
}

int rt_pci_scan(struct rt_pci_dev *out, int max)
{
	if (!rt_pci_present())
		return 0;
	int n = 0;
	for (uint8_t slot = 0; slot < 32; slot++) {
		for (uint8_t fn = 0; fn < 8; fn++) {
			uint32_t id = read32(slot, fn, REG_VENDOR);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break; /* no device in this slot */
				continue;
			}
			if (n < max)
				out[n] = (struct rt_pci_dev){
					.slot = slot,
					.fn = fn,
					.vendor = (uint16_t)id,
					.device = (uint16_t)(id >> 16),
					.class_code = read32(slot, fn, REG_CLASS_REV) >> 8,
				};
			n++;
			/* Functions 1-7 exist only on a multi-function device. */
			if (fn == 0 && !(read32(slot, 0, REG_HEADER_TYPE & 0xfc) >> 16 & 0x80))
				break;
		}
	}
	return n;
}

int rt_pci_find(uint16_t vendor, uint16_t device, struct rt_pci_dev *out)
{
	struct rt_pci_dev all[32];
	int n = rt_pci_scan(all, 32);
	for (int i = 0; i < n && i < 32; i++)
		if (all[i].vendor == vendor && all[i].device == device) {
			*out = all[i];
			return 0;
		}
	return -1;
}

int rt_pci_bar(const struct rt_pci_dev *d, int i, struct rt_pci_bar *out)
{
	if (i < 0 || i >= NR_BARS)
		return -1;
	uint8_t reg = (uint8_t)(REG_BAR0 + 4 * i);
	/* The upper half of a 64-bit BAR is not a BAR of its own. */
	if (i > 0) {
		uint32_t prev = rt_pci_read32(d, (uint8_t)(reg - 4));
		if ((prev & 7) == 4)
			return -1;
	}
	uint16_t cmd = rt_pci_read16(d, REG_COMMAND);
	/* Decoding off while the BAR holds all ones, so that it answers
	 * nowhere in between. */
	rt_pci_write16(d, REG_COMMAND, cmd & (uint16_t) ~(RT_PCI_CMD_IO | RT_PCI_CMD_MEM));
	uint32_t lo = rt_pci_read32(d, reg);
	rt_pci_write32(d, reg, 0xffffffffu);
	uint32_t lo_mask = rt_pci_read32(d, reg);
	rt_pci_write32(d, reg, lo);
	uint32_t hi = 0, hi_mask = 0xffffffffu;
	int is_io = lo & 1;
	int is_64 = !is_io && (lo & 7) == 4 && i + 1 < NR_BARS;
	if (is_64) {
		hi = rt_pci_read32(d, (uint8_t)(reg + 4));
		rt_pci_write32(d, (uint8_t)(reg + 4), 0xffffffffu);
		hi_mask = rt_pci_read32(d, (uint8_t)(reg + 4));
		rt_pci_write32(d, (uint8_t)(reg + 4), hi);
	}
	rt_pci_write16(d, REG_COMMAND, cmd);
	/* Size = two's complement of the address bits that stuck. I/O BARs may
	 * hard-wire their upper 16 bits to 0; all ones back means no device. */
	uint64_t size = 0;
	if (lo_mask != 0 && lo_mask != 0xffffffffu) {
		if (is_io)
			size = (uint32_t)(~((lo_mask & ~3u) | 0xffff0000u) + 1);
		else if (is_64)
			size = ~((uint64_t)hi_mask << 32 | (lo_mask & ~0xfu)) + 1;
		else
			size = (uint32_t)(~(lo_mask & ~0xfu) + 1);
	}
	*out = (struct rt_pci_bar){
		.addr = is_io ? (lo & ~3u) : ((uint64_t)hi << 32 | (lo & ~0xfu)),
		.size = size,
		.is_io = is_io,
		.is_64 = is_64,
	};
	return 0;
}

void rt_pci_enable(const struct rt_pci_dev *d, uint16_t bits)
{
	rt_pci_write16(d, REG_COMMAND, (uint16_t)(rt_pci_read16(d, REG_COMMAND) | bits));
}
