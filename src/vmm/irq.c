/* Interrupts for guests that take them (Linux): the in-kernel irqchip, so
 * that LAPIC timers, IPIs and EOIs never leave the kernel, and a way for
 * devices to drive its lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"

int vm_create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	if (vm->nr_vcpus) {
		snprintf(err, errlen, "irqchip must be created before the vCPUs");
		return -EINVAL;
	}
	if (!kvm_check_cap(vm->kvm, KVM_CAP_IRQCHIP)) {
		snprintf(err, errlen, "%s: missing capability KVM_CAP_IRQCHIP", kvm_device_path());
		return -ENOTSUP;
	}
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(e));
		return -e;
	}
	vm->irqchip = true;
	return 0;
}

int vm_irq_line(struct vm *vm, uint32_t irq, bool level)
{
	if (!vm->irqchip)
		return -ENODEV;
	struct kvm_irq_level l = {.irq = irq, .level = level ? 1 : 0};
	return ioctl(vm->fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
