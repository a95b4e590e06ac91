/* rng-odd: every access to the RNG device that docs/rng-device.md calls odd,
 * made with real guest instructions, each checked against the documented
 * answer; then proof that none of them moved or reseeded the generator: the
 * numbers read around them are exactly the sequence of a fresh seeding.
 * Prints one line per failed check and "rng-odd: ok" when all held. */
#include "rng_dev.h"

static int failures;

static uint64_t mmio_read(uintptr_t addr, int len)
{
	uint64_t v = 0;
	switch (len) {
	case 1:
		__asm__ volatile("movb (%1), %b0" : "+r"(v) : "r"(addr) : "memory");
		break;
	case 2:
		__asm__ volatile("movw (%1), %w0" : "+r"(v) : "r"(addr) : "memory");
		break;
	case 4:
		__asm__ volatile("movl (%1), %k0" : "+r"(v) : "r"(addr) : "memory");
		break;
	default:
		__asm__ volatile("movq (%1), %0" : "+r"(v) : "r"(addr) : "memory");
		break;
	}
	return v;
}

static void mmio_write(uintptr_t addr, int len, uint64_t v)
{
	switch (len) {
	case 1:
		__asm__ volatile("movb %b0, (%1)" : : "r"(v), "r"(addr) : "memory");
		break;
	case 2:
		__asm__ volatile("movw %w0, (%1)" : : "r"(v), "r"(addr) : "memory");
		break;
	case 4:
		__asm__ volatile("movl %k0, (%1)" : : "r"(v), "r"(addr) : "memory");
		break;
	default:
		__asm__ volatile("movq %0, (%1)" : : "r"(v), "r"(addr) : "memory");
		break;
	}
}

static void check(const char *what, unsigned off, int len, uint64_t got, uint64_t want)
{
	if (got == want)
		return;
	rt_printf("FAIL: %s at +0x%x (%d bytes): got 0x%lx, documented 0x%lx\n", what, off, len,
		  (unsigned long)got, (unsigned long)want);
	failures++;
}

static uint64_t ones(int len)
{
	return len == 8 ? ~0ull : (1ull << (8 * len)) - 1;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	uintptr_t bar = rng_open();
	if (!bar)
		return 1;
	uint32_t seq[8];
	int n = 0;
	rng_seed(bar, 42);
	seq[n++] = rng_read(bar);

	/* 4-byte aligned, but not one of the two operations: reads 0, writes
	 * ignored. */
	mmio_write(bar + RNG_REG_RNG, 4, 0xdeadbeef);
	check("read of SEED", RNG_REG_SEED, 4, mmio_read(bar + RNG_REG_SEED, 4), 0);
	static const unsigned regs[] = {0x8, 0xc, 0x100, 0xffc};
	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		mmio_write(bar + regs[i], 4, 42);
		check("read beyond the registers", regs[i], 4, mmio_read(bar + regs[i], 4), 0);
	}
	seq[n++] = rng_read(bar);

	/* Not 4 bytes wide, or not 4-byte aligned: reads all ones, writes
	 * ignored (in particular, no narrow or wide write seeds). */
	static const struct {
		unsigned off;
		int len;
	} odd[] = {{0, 1}, {0, 2}, {0, 8}, {1, 1}, {2, 2}, {1, 4},     {2, 4},	   {3, 4},
		   {4, 1}, {4, 2}, {4, 8}, {5, 4}, {6, 2}, {0xff8, 8}, {0xfff, 1}, {0x9, 4}};
	for (unsigned i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		check("odd read", odd[i].off, odd[i].len, mmio_read(bar + odd[i].off, odd[i].len),
		      ones(odd[i].len));
		mmio_write(bar + odd[i].off, odd[i].len, 42);
	}
	seq[n++] = rng_read(bar);
	seq[n++] = rng_read(bar);

	/* Reseed: the same numbers must come back, in the same order. */
	rng_seed(bar, 42);
	for (int i = 0; i < n; i++) {
		uint32_t v = rng_read(bar);
		if (v != seq[i]) {
			rt_printf("FAIL: number %d after the odd accesses is %u, a fresh seeding "
				  "gives %u\n",
				  i, seq[i], v);
			failures++;
		}
	}
	rt_puts(failures ? "rng-odd: FAILED" : "rng-odd: ok");
	return failures ? 1 : 0;
}
