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
/* Finish the POLL hypercall a restored vCPU was sleeping in when its
 * snapshot was taken: sleep what is left of it, then write its result. */
void hypercall_finish_poll(struct vcpu *vcpu);

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

/* --- serial.c ------------------------------------------------------------ */
#define SERIAL_COM1_BASE  0x3f8
#define SERIAL_COM1_IRQ	  4
#define SERIAL_LINE_MAX	  256 /* console history: bytes kept per line */
#define SERIAL_RING_LINES 32  /* console history: lines kept */

/* Where an 8250 UART sits and what it is connected to. */
struct serial_config {
	uint16_t base; /* I/O port of register 0 */
	uint32_t irq;  /* irqchip line */
	int out_fd;    /* guest output goes here (-1: discarded) */
	int in_fd;     /* host input comes from here (-1: none) */
	bool escape;   /* Ctrl-A x on in_fd stops the VM (interactive use) */
};
struct serial;
/* Called with each completed console line (without the newline), from the
 * vCPU thread that wrote it; must not call back into the serial device. */
typedef void (*serial_line_hook)(void *opaque, const char *line);

/* Create a UART on vm's PIO bus; starts the input thread when in_fd >= 0. */
int serial_create(struct vm *vm, const struct serial_config *cfg, struct serial **out);
/* Watch the console line by line (NULL fn: stop watching). */
void serial_set_line_hook(struct serial *s, serial_line_hook fn, void *opaque);
/* Write the last max_lines console lines to fd, each indented with "  | ". */
void serial_print_tail(struct serial *s, int fd, int max_lines);
/* Stop the input thread, unregister and free (NULL is fine). */
void serial_destroy(struct serial *s);

/* --- i8042.c -------------------------------------------------------------- */
/* Register the keyboard controller's command port (0x64) just far enough
 * for its reset command (0xfe), which Linux uses to reboot: it stops the VM
 * with VM_STOP_RESET. */
int i8042_register(struct vm *vm);

#endif
