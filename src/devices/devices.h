/* The device layer: the bus that maps guest addresses to devices, and the
 * devices themselves. The vCPU run loop only ever talks to a bus. */
#ifndef WISP_DEVICES_H
#define WISP_DEVICES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vm;

/* A device's handler for one access. `data` holds `len` bytes (1..8): filled
 * by the handler on a read, the value written on a write. */
typedef void (*bus_handler)(void *opaque, struct vcpu *vcpu, uint64_t offset, uint8_t *data,
			    uint32_t len, bool is_write);

/* One registered address range. */
struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler fn;
	void *opaque;
	const char *name;
};

/* A set of non-overlapping ranges kept sorted by base (port I/O or MMIO). */
struct bus {
	pthread_rwlock_t lock;
	struct bus_range *ranges;
	int nr, cap;
	uint64_t unhandled; /* accesses that hit no range */
};

/* --- bus.c ------------------------------------------------------------- */
/* Initialise an empty bus. */
int bus_init(struct bus *bus);
/* Free a bus's ranges. */
void bus_destroy(struct bus *bus);
/* Register [base, base+len); -EEXIST if it overlaps, -EINVAL if empty or wrapping. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler fn, void *opaque,
		 const char *name);
/* Remove the range starting exactly at base; -ENOENT if none. */
int bus_unregister(struct bus *bus, uint64_t base);
/* Deliver one access. An access that no range covers entirely reads as all
 * ones and its writes are discarded (like an empty ISA/PCI slot); returns
 * false in that case. */
bool bus_dispatch(struct bus *bus, struct vcpu *vcpu, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write);

/* --- hypercall.c --------------------------------------------------------- */
/* Register the unikernel hypercall ports (WISP_HC_BASE...) on vm's PIO bus. */
int hypercall_register(struct vm *vm);

/* --- rng.c (the course's RNG device; docs/rng-device.md) ---------------- */
struct pci_bus;
struct rng_device;
/* What the guest did to the device, for --stats and tests. */
struct rng_stats {
	uint64_t reads;	  /* numbers handed out (4 bytes each) */
	uint64_t seeds;	  /* writes to SEED */
	uint64_t ignored; /* every other access, odd ones included */
};
/* Add an RNG device to pb, seeded with *seed, or from host entropy if NULL. */
int rng_create(struct pci_bus *pb, const uint32_t *seed, struct rng_device **out);
/* Take the device off its bus and free it. */
void rng_destroy(struct rng_device *rng);
/* Copy the device's counters. */
void rng_get_stats(struct rng_device *rng, struct rng_stats *out);
/* Give vm an RNG device (and a PCI bus if it has none); the VM owns both. */
int rng_attach(struct vm *vm, const uint32_t *seed);

#endif
