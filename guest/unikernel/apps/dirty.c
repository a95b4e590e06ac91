/* dirty: writes one distinct 8-byte value into each of PAGES pages of RAM
 * above the image (default: half of RAM), prints "dirty: N pages", then
 * sleeps in POLL for ever. The snapshot and migration benchmarks use it for
 * a VM with a known amount of populated memory; `dirty PAGES check` first
 * checks that every page still holds its value (after a restore or a
 * migration) and prints "dirty: check ok" or the first bad page. */
#include "wrt.h"

int main(int argc, char **argv)
{
	const struct wisp_boot_info *bi = rt_boot_info();
	/* The page right after the image is the stack guard (not mapped). */
	uint64_t start = ((bi->image_end + 4095) & ~4095ull) + 4096;
	uint64_t room =
		bi->mem_size > start + (256u << 10) ? bi->mem_size - start - (256u << 10) : 0;
	uint64_t pages = argc > 1 ? (uint64_t)rt_atoll(argv[1]) : bi->mem_size / 2 / 4096;
	if (pages * 4096 > room)
		pages = room / 4096;
	volatile uint64_t *p = (volatile uint64_t *)start;
	for (uint64_t i = 0; i < pages; i++)
		p[i * 512] = 0x5749535000000000ull | i;
	rt_printf("dirty: %llu pages\n", (unsigned long long)pages);
	for (;;) {
		uint64_t ev = rt_poll(argc > 2 ? 200000000ull : UINT64_MAX);
		(void)ev;
		if (argc > 2) {
			uint64_t bad = pages;
			for (uint64_t i = 0; i < pages && bad == pages; i++)
				if (p[i * 512] != (0x5749535000000000ull | i))
					bad = i;
			if (bad == pages)
				rt_printf("dirty: check ok\n");
			else
				rt_printf("dirty: page %llu lost its value\n",
					  (unsigned long long)bad);
		}
	}
}
