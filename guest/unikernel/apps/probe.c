/* probe: touches port and MMIO addresses that no device claims and checks
 * the documented answer (reads return all ones, writes are dropped), then
 * shows that the VMM is still serving it. Exits 0 if all held. */
#include "wrt.h"

#define UNCLAIMED_MMIO 0xd0000000ull /* in the MMIO hole, no device */

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	int bad = 0;
	outb(0x80, 0x12);
	outl(0x1234, 0xdeadbeef);
	uint8_t b = inb(0x80);
	uint16_t w = inw(0x1234);
	uint32_t l = inl(0x1234);
	rt_printf("port reads: %x %x %x\n", b, w, l);
	bad += b != 0xff || w != 0xffff || l != 0xffffffffu;
	/* Unclaimed ports inside the hypercall range are not hypercalls. */
	uint32_t h = inl(WISP_HC_BASE + WISP_HC_CONSOLE);
	bad += h != 0xffffffffu;

	volatile uint32_t *mmio = (volatile uint32_t *)UNCLAIMED_MMIO;
	volatile uint64_t *mmio64 = (volatile uint64_t *)(UNCLAIMED_MMIO + 0x100);
	volatile uint8_t *mmio8 = (volatile uint8_t *)(UNCLAIMED_MMIO + 0x1003);
	*mmio = 0x12345678;
	uint32_t m = *mmio;
	uint64_t m64 = *mmio64;
	uint8_t m8 = *mmio8;
	rt_printf("mmio reads: %x %lx %x\n", m, (unsigned long)m64, m8);
	bad += m != 0xffffffffu || m64 != ~0ull || m8 != 0xff;
	rt_puts(bad ? "probe: FAILED" : "probe: ok");
	return bad ? 1 : 0;
}
