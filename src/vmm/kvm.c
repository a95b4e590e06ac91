/* /dev/kvm: open it, check that it is the API we speak and has every
 * capability Wisp relies on, and cache what is expensive to ask twice
 * (KVM_GET_SUPPORTED_CPUID costs ~0.3 ms here). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm.h"

/* Capabilities without which Wisp cannot run a guest at all. */
static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	{KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
};

const char *kvm_device_path(void)
{
	const char *p = getenv("WISP_KVM_DEVICE");
	return p && *p ? p : "/dev/kvm";
}

int kvm_check_cap(struct kvm *kvm, long cap)
{
	int r = ioctl(kvm->fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

/* KVM_GET_SUPPORTED_CPUID needs a buffer large enough; grow until it fits. */
static int query_cpuid(struct kvm *kvm)
{
	for (int n = 256; n <= 4096; n *= 2) { /* 256 fits every CPU seen so far */
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = (uint32_t)n;
		if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return -e;
	}
	return -E2BIG;
}

int kvm_open(struct kvm *kvm, char *err, size_t errlen)
{
	memset(kvm, 0, sizeof(*kvm));
	const char *path = kvm_device_path();
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int e = errno;
		const char *hint = e == ENOENT ? " (is the kvm module loaded? is this a VM without "
						 "nested virtualisation?)"
				   : e == EACCES ? " (add your user to the 'kvm' group or fix the "
						   "device's permissions)"
						 : "";
		snprintf(err, errlen, "%s: %s%s", path, strerror(e), hint);
		return -e;
	}
	int v = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, Wisp needs %d", path, v,
			 KVM_API_VERSION);
		kvm_close(kvm);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (!kvm_check_cap(kvm, required_caps[i].cap)) {
			snprintf(err, errlen, "%s: missing capability %s", path,
				 required_caps[i].name);
			kvm_close(kvm);
			return -ENOTSUP;
		}
	}
	kvm->run_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "%s: bad KVM_GET_VCPU_MMAP_SIZE %d", path, kvm->run_size);
		kvm_close(kvm);
		return -ENOTSUP;
	}
	/* SYNC_REGS saves two ioctls per vCPU start; fall back to SET_[S]REGS. */
	int sync = kvm_check_cap(kvm, KVM_CAP_SYNC_REGS);
	kvm->sync_regs = getenv("WISP_NO_SYNC_REGS")
				 ? false
				 : (sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ==
					   (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	kvm->max_vcpus = kvm_check_cap(kvm, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = kvm_check_cap(kvm, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4; /* the documented minimum when the cap is absent */
	int r = query_cpuid(kvm);
	if (r < 0) {
		snprintf(err, errlen, "%s: KVM_GET_SUPPORTED_CPUID: %s", path, strerror(-r));
		kvm_close(kvm);
		return r;
	}
	return 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
	free(kvm->cpuid);
	kvm->cpuid = NULL;
}
