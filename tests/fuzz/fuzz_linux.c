/* Fuzz target: what Linux boots expose. Byte 0 picks the surface:
 *  even: a kernel file (bzImage header or PVH ELF) through
 *        linux_parse_kernel and linux_plan_boot, as `wisp run --kernel`
 *        would, with memory size, initrd size and vCPUs from the next bytes;
 *  odd:  a guest driving the 8250 UART: each 3-byte record is (register,
 *        value, read/write), checked never to crash, hang or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/x86.h"
#include "devices/devices.h"
#include "vmm/vmm.h"

static void fuzz_kernel(const uint8_t *p, size_t n)
{
	if (n < 8)
		return;
	uint64_t mem = ((uint64_t)(p[0] | p[1] << 8) + 1) << 20; /* 1 MiB .. 64 GiB */
	size_t initrd = (size_t)(p[2] | p[3] << 8 | p[4] << 16) << 4;
	int cpus = p[5] % 80;
	size_t cmdline = (size_t)(p[6] | p[7] << 8) % 4096;
	struct linux_image li;
	struct linux_plan plan;
	char err[WISP_ERRLEN];
	if (linux_parse_kernel(p + 8, n - 8, &li, err, sizeof(err)))
		return;
	if (linux_plan_boot(&li, mem, initrd, cmdline, cpus, &plan, err, sizeof(err)))
		return;
	/* A plan that passed must place the initrd above the kernel, below 4 GiB. */
	if (initrd && (plan.initrd_gpa < li.kernel_end || plan.initrd_gpa + initrd > 1ull << 32))
		abort();
}

static void fuzz_uart(const uint8_t *p, size_t n)
{
	static struct vm vm;
	static bool ready;
	if (!ready) {
		bus_init(&vm.pio);
		pthread_mutex_init(&vm.lock, NULL);
		ready = true;
	}
	struct serial *s;
	struct serial_config c = {.base = 0x3f8, .irq = 4, .out_fd = -1, .in_fd = -1};
	if (serial_create(&vm, &c, &s))
		abort();
	for (size_t i = 0; i + 3 <= n; i += 3) {
		uint8_t data[8] = {p[i + 1]};
		uint32_t len = (p[i + 2] >> 1) % 4 == 3 ? 4 : 1; /* now and then a wide access */
		bus_dispatch(&vm.pio, NULL, 0x3f8 + (p[i] & 7), data, len, p[i + 2] & 1);
	}
	serial_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_uart(data + 1, size - 1);
	else
		fuzz_kernel(data + 1, size - 1);
	return 0;
}
