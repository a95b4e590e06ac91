/* The i8042 keyboard controller, reduced to what a microVM needs: its
 * command port, whose reset command (0xfe) is one of the ways Linux reboots
 * (`reboot=k`, and the fallback of the default reboot=acpi without ACPI).
 * Status reads say "no data, input buffer empty" so that a polling guest
 * never waits. */
#include "devices/devices.h"
#include "vmm/vmm.h"

#define I8042_COMMAND 0x64
#define I8042_RESET   0xfe

static void i8042_io(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
		     bool is_write)
{
	(void)vcpu;
	(void)off;
	struct vm *vm = opaque;
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0; /* status: output buffer empty, input buffer empty */
		return;
	}
	if (len == 1 && data[0] == I8042_RESET)
		vm_request_stop(vm, VM_STOP_RESET);
}

int i8042_register(struct vm *vm)
{
	return bus_register(&vm->pio, I8042_COMMAND, 1, i8042_io, vm, "i8042");
}
