/* lspci: probes the PCI host bridge the way Linux does (mechanism #1 must
 * read back 0x80000000, mechanism #2 must not answer), then lists bus 0
 * with each function's BARs. Exit 0 if a mechanism-#1 bridge was found. */
#include "wrt.h"
#include "wrt_pci.h"

/* Linux's mechanism-#2 check: byte writes of 0 to 0xCFB, 0xCF8 and 0xCFA;
 * a type-2 bridge reads 0 back from 0xCF8 and 0xCFA. */
static int mech2_answers(void)
{
	outb(0xcfb, 0x00);
	outb(0xcf8, 0x00);
	outb(0xcfa, 0x00);
	return inb(0xcf8) == 0 && inb(0xcfa) == 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	outb(0xcfb, 0x01); /* what Linux writes before the mechanism-#1 check */
	int m1 = rt_pci_present();
	int m2 = mech2_answers();
	rt_printf("mechanism #1: %s, mechanism #2: %s\n", m1 ? "yes" : "no", m2 ? "yes" : "no");
	if (!m1)
		return 1;
	struct rt_pci_dev devs[32];
	int n = rt_pci_scan(devs, 32);
	for (int i = 0; i < n && i < 32; i++) {
		const struct rt_pci_dev *d = &devs[i];
		rt_printf("00:%02x.%x %04x:%04x class %06x\n", d->slot, d->fn, d->vendor, d->device,
			  d->class_code);
		for (int b = 0; b < 6; b++) {
			struct rt_pci_bar bar;
			if (rt_pci_bar(d, b, &bar) || !bar.size)
				continue;
			rt_printf("  bar%d %s 0x%lx size 0x%lx\n", b, bar.is_io ? "io" : "mem",
				  (unsigned long)bar.addr, (unsigned long)bar.size);
		}
	}
	return 0;
}
