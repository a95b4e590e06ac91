/* The i8042 keyboard controller, reduced to what a microVM needs: its
 * command port, whose reset command (0xfe) is one of the ways Linux reboots
 * (`reboot=k`, and the fallback of the default reboot=acpi without ACPI).
 * Status reads say "no data, input buffer empty" so that a polling guest
 * never waits. */
#include <errno.h>
#include <stdio.h>

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

/* Nothing to save: the controller has no state of its own here. The
 * entry still takes part, so that a snapshot names every device. */
static int i8042_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	(void)opaque;
	(void)out;
	*version = 1;
	return 0;
}

static int i8042_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
			 size_t errlen)
{
	(void)opaque;
	(void)buf;
	return device_state_check("state", version, len, 1, 0, false, err, errlen);
}

static const struct device_ops i8042_ops = {
	.name = "i8042",
	.save = i8042_save,
	.restore = i8042_restore,
};

int i8042_register(struct vm *vm)
{
	int r = bus_register(&vm->pio, I8042_COMMAND, 1, i8042_io, vm, "i8042");
	if (!r && !vm_add_device(vm, &i8042_ops, vm))
		r = -ENOMEM;
	return r;
}
