/* The Intel MultiProcessor table (MP spec 1.4). A kernel built without ACPI
 * finds its CPUs, its IOAPIC and how ISA interrupts are wired only here; with
 * no table it boots on one CPU. Linux scans the first KiB, the last KiB
 * below 640 KiB and 0xF0000-0xFFFFF for the floating pointer. */
#include <errno.h>
#include <string.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define MP_LAPIC_ADDR	0xfee00000u
#define MP_IOAPIC_ADDR	0xfec00000u
#define MP_LAPIC_VER	0x14
#define MP_IOAPIC_VER	0x11
#define MP_SPEC_REV	4
#define MP_ISA_IRQS	16
#define MP_BUS_ISA	0
#define MP_CPU_ENABLED	0x1
#define MP_CPU_BSP	0x2
#define MP_INT_INT	0 /* vectored interrupt */
#define MP_INT_NMI	1
#define MP_INT_EXTINT	3
#define MP_ENTRY_CPU	0
#define MP_ENTRY_BUS	1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT	3
#define MP_ENTRY_LINT	4

struct mp_floating {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;  /* the configuration table */
	uint8_t length;	   /* in 16-byte units: 1 */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature[5]; /* all 0: a configuration table follows, no IMCR */
} __attribute__((packed));

struct mp_header {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* header + entries */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count; /* entries */
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_cpu {
	uint8_t type, apic_id, apic_ver, flags;
	uint32_t signature, features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type, id;
	char name[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type, id, ver, flags;
	uint32_t addr;
} __attribute__((packed));

struct mp_int {
	uint8_t type, int_type;
	uint16_t flags; /* 0: polarity and trigger conform to the bus */
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mp_header) == 44, "MP header is 44 bytes");
_Static_assert(sizeof(struct mp_cpu) == 20, "MP processor entry is 20 bytes");
_Static_assert(sizeof(struct mp_int) == 8, "MP interrupt entry is 8 bytes");

/* The two's complement of the byte sum, so that the whole sums to 0. */
static uint8_t mp_checksum(const void *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return (uint8_t)-sum;
}

size_t x86_mptable_size(int nr_cpus)
{
	return sizeof(struct mp_floating) + sizeof(struct mp_header) +
	       (size_t)nr_cpus * sizeof(struct mp_cpu) + sizeof(struct mp_bus) +
	       sizeof(struct mp_ioapic) + (MP_ISA_IRQS + 2) * sizeof(struct mp_int);
}

int x86_write_mptable(const struct guest_mem *mem, int nr_cpus, uint32_t cpu_signature,
		      uint32_t cpu_features)
{
	if (nr_cpus < 1 || nr_cpus > 254) /* the IOAPIC takes the next APIC ID */
		return -EINVAL;
	size_t size = x86_mptable_size(nr_cpus);
	uint64_t gpa =
		size <= LINUX_EBDA_END - LINUX_MPTABLE_GPA ? LINUX_MPTABLE_GPA : LINUX_BIOS_GPA;
	if (size > LINUX_HIGH_GPA - LINUX_BIOS_GPA)
		return -E2BIG;
	uint8_t *base = gmem_ptr(mem, gpa, size);
	if (!base)
		return -EFAULT;
	memset(base, 0, size);
	struct mp_floating *fp = (struct mp_floating *)base;
	struct mp_header *h = (struct mp_header *)(fp + 1);
	uint8_t *p = (uint8_t *)(h + 1);
	uint16_t count = 0;
	const uint8_t ioapic_id = (uint8_t)nr_cpus;

	for (int i = 0; i < nr_cpus; i++, count++, p += sizeof(struct mp_cpu)) {
		struct mp_cpu c = {
			.type = MP_ENTRY_CPU,
			.apic_id = (uint8_t)i, /* = the vCPU's CPUID APIC ID (cpuid.c) */
			.apic_ver = MP_LAPIC_VER,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = cpu_signature,
			.features = cpu_features,
		};
		memcpy(p, &c, sizeof(c));
	}
	struct mp_bus bus = {.type = MP_ENTRY_BUS, .id = MP_BUS_ISA, .name = "ISA   "};
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	count++;
	struct mp_ioapic io = {.type = MP_ENTRY_IOAPIC,
			       .id = ioapic_id,
			       .ver = MP_IOAPIC_VER,
			       .flags = 1,
			       .addr = MP_IOAPIC_ADDR};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	count++;
	/* ISA IRQ n on IOAPIC pin n: KVM's default GSI routing wires them so. */
	for (int irq = 0; irq < MP_ISA_IRQS; irq++, count++, p += sizeof(struct mp_int)) {
		struct mp_int e = {.type = MP_ENTRY_IOINT,
				   .int_type = MP_INT_INT,
				   .src_bus = MP_BUS_ISA,
				   .src_irq = (uint8_t)irq,
				   .dst_apic = ioapic_id,
				   .dst_pin = (uint8_t)irq};
		memcpy(p, &e, sizeof(e));
	}
	/* LINT0 takes the 8259's ExtINT, LINT1 NMIs, on every local APIC. */
	struct mp_int lint[2] = {
		{.type = MP_ENTRY_LINT, .int_type = MP_INT_EXTINT, .dst_apic = 0xff, .dst_pin = 0},
		{.type = MP_ENTRY_LINT, .int_type = MP_INT_NMI, .dst_apic = 0xff, .dst_pin = 1},
	};
	memcpy(p, lint, sizeof(lint));
	p += sizeof(lint);
	count += 2;

	memcpy(h->signature, "PCMP", 4);
	h->length = (uint16_t)(p - (uint8_t *)h);
	h->spec_rev = MP_SPEC_REV;
	memcpy(h->oem, "WISP    ", 8);
	memcpy(h->product, "MICROVM     ", 12);
	h->count = count;
	h->lapic = MP_LAPIC_ADDR;
	h->checksum = mp_checksum(h, h->length);

	memcpy(fp->signature, "_MP_", 4);
	fp->physptr = (uint32_t)(gpa + sizeof(*fp));
	fp->length = 1;
	fp->spec_rev = MP_SPEC_REV;
	fp->checksum = mp_checksum(fp, sizeof(*fp));
	return 0;
}
