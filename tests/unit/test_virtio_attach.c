/* Attaching virtio devices to a real VM (needs /dev/kvm, else skipped):
 * slots and IRQs, the Linux command line and the unikernel device table,
 * ioeventfd notifies served by the I/O thread, irqfd with an in-kernel
 * irqchip, and teardown in the right order (ASan checks the rest). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include <wisp/abi.h>

#include "../virtio_harness.h"

static struct kvm kvm;
static struct vm vm;
static char err[256];

static int setup(void **state)
{
	(void)state;
	int fd = open(kvm_device_path(), O_RDWR);
	if (fd < 0)
		return 0; /* each test skips */
	close(fd);
	if (kvm_open(&kvm, err, sizeof(err)) || vm_create(&vm, &kvm, 4 << 20, err, sizeof(err)))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (kvm.fd > 0) {
		vm_destroy(&vm);
		kvm_close(&kvm);
	}
	memset(&kvm, 0, sizeof(kvm));
	return 0;
}

static void need_kvm(void)
{
	if (kvm.fd <= 0)
		skip();
}

static void test_slots_cmdline_table(void **state)
{
	(void)state;
	need_kvm();
	assert_int_equal(virtio_attach(&vm, virtio_rng_create(err, sizeof(err)), err, sizeof(err)),
			 0);
	struct virtio_console_opts co = {.in_fd = -1, .out_fd = -1};
	assert_int_equal(
		virtio_attach(&vm, virtio_console_create(&co, err, sizeof(err)), err, sizeof(err)),
		0);
	char cmdline[256] = "console=ttyS0";
	assert_int_equal(virtio_mmio_cmdline(&vm, cmdline, sizeof(cmdline)), 0);
	assert_string_equal(cmdline, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 "
				     "virtio_mmio.device=4K@0xd0001000:6");
	char small[40] = "x";
	assert_int_equal(virtio_mmio_cmdline(&vm, small, sizeof(small)), -ENOSPC);
	assert_string_equal(small, "x"); /* untouched on failure */
	struct wisp_device t[WISP_MAX_DEVICES];
	assert_int_equal(virtio_device_table(&vm, t, WISP_MAX_DEVICES), 2);
	assert_int_equal(t[0].base, 0xd0000000);
	assert_int_equal(t[0].virtio_id, 4);
	assert_int_equal(t[1].virtio_id, 3);
	assert_int_equal(t[1].event, 1);
	assert_int_equal(t[1].type, WISP_DEV_VIRTIO_MMIO);
	/* The registers answer on the VM's MMIO bus. */
	uint32_t magic = 0;
	assert_true(bus_dispatch(&vm.mmio, NULL, 0xd0001000, (uint8_t *)&magic, 4, false));
	assert_int_equal(magic, 0x74726976);
}

static void test_too_many(void **state)
{
	(void)state;
	need_kvm();
	for (int i = 0; i < VIRTIO_MAX_DEVICES; i++)
		assert_int_equal(
			virtio_attach(&vm, virtio_rng_create(err, sizeof(err)), err, sizeof(err)),
			0);
	struct virtio_dev *d = virtio_rng_create(err, sizeof(err));
	assert_int_equal(virtio_attach(&vm, d, err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "virtio-rng: too many virtio devices (at most 8)");
	virtio_dev_free(d);
}

/* A notify through the ioeventfd reaches the device on the I/O thread, and
 * the completion raises the device's POLL event. */
static void test_ioeventfd_and_event(void **state)
{
	(void)state;
	need_kvm();
	struct virtio_dev *d = virtio_rng_create(err, sizeof(err));
	assert_int_equal(virtio_attach(&vm, d, err, sizeof(err)), 0);
	struct vh h = {.d = d, .num = 8};
	h.ram = vm.mem.base;
	vh_setup(&h, 0, 1, 8);
	struct vh_buf b = {VH_DATA, 32, true};
	vh_chain(&h, 0, 0, &b, 1);
	uint64_t one = 1; /* what KVM does when the guest writes QueueNotify */
	assert_int_equal(write(d->kick[0].fd, &one, 8), 8);
	struct vring_used_elem e;
	for (int i = 0; i < 2000 && !vh_take_used(&h, 0, &e); i++)
		usleep(1000);
	assert_int_equal(e.len, 32);
	assert_int_equal(d->notifies, 1);
	/* The I/O thread posts the POLL event just after it publishes the used
	 * element: wait for it (a slower KVM, like the lab's, shows the gap). */
	uint64_t ev = 0;
	for (int i = 0; i < 2000; i++) {
		pthread_mutex_lock(&vm.events_lock);
		ev = vm.events;
		pthread_mutex_unlock(&vm.events_lock);
		if (ev)
			break;
		usleep(1000);
	}
	assert_int_equal(ev, 1);
}

static void test_irqfd(void **state)
{
	(void)state;
	need_kvm();
	struct virtio_dev *d = virtio_rng_create(err, sizeof(err));
	virtio_use_irqfd(&vm, true);
	/* Without an in-kernel irqchip KVM refuses the irqfd: a clear error. */
	assert_true(virtio_attach(&vm, d, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "virtio-rng: KVM_IRQFD on GSI 5"));
	virtio_dev_free(d);
}

static void test_irqfd_with_irqchip(void **state)
{
	(void)state;
	need_kvm();
	if (ioctl(vm.fd, KVM_CREATE_IRQCHIP, 0) < 0)
		skip();
	virtio_use_irqfd(&vm, true);
	struct virtio_dev *d = virtio_rng_create(err, sizeof(err));
	assert_int_equal(virtio_attach(&vm, d, err, sizeof(err)), 0);
	assert_true(d->irqfd >= 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_slots_cmdline_table), T(test_too_many),
		T(test_ioeventfd_and_event), T(test_irqfd),
		T(test_irqfd_with_irqchip),
	};
	return cmocka_run_group_tests_name("virtio attach (KVM)", tests, NULL, NULL);
}
