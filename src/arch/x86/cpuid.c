/* The CPUID a vCPU sees: what KVM supports, with per-vCPU identity filled in
 * (APIC IDs) and the hypervisor bit set so guests know they are virtual. */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/x86.h"

#define CPUID_HYPERVISOR   (1u << 31)
#define CPUID_TSC_DEADLINE (1u << 24)

struct kvm_cpuid2 *x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, int id, int nr_vcpus)
{
	size_t sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return NULL;
	memcpy(c, supported, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, EBX[23:16] logical processors. */
			e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)id << 24) |
				 ((uint32_t)(nr_vcpus > 255 ? 255 : nr_vcpus) << 16);
			e->ecx |= CPUID_HYPERVISOR;
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)id; /* x2APIC ID */
			break;
		default:
			break;
		}
	}
	return c;
}

void x86_cpuid_add_irqchip_features(struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= CPUID_TSC_DEADLINE;
}
