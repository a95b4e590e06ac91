/* The guest-physical map of an x86 VM: RAM from 0 up to the MMIO hole below
 * 4 GiB (where PCI BARs and virtio-mmio devices live), the rest from 4 GiB. */
#include "arch/x86/x86.h"

int x86_ram_layout(uint64_t mem_size, struct x86_ram out[2])
{
	if (mem_size <= X86_MMIO_HOLE_START) {
		out[0] = (struct x86_ram){0, mem_size, 0};
		return 1;
	}
	out[0] = (struct x86_ram){0, X86_MMIO_HOLE_START, 0};
	out[1] = (struct x86_ram){X86_MMIO_HOLE_END, mem_size - X86_MMIO_HOLE_START,
				  X86_MMIO_HOLE_START};
	return 2;
}
