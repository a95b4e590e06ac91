/* One VM's configuration: what every path that makes a VM (`wisp run`'s
 * flags, `--config FILE`, `POST /vms`, a snapshot) spells, and what the one
 * builder (build.c) turns into a VM ready to run. Its JSON form is
 * docs/config.md. Also the limits and exit codes every layer shares.
 *
 * Library code: 0 or -errno, with one line naming the field and the problem
 * in a caller-supplied buffer. */
#ifndef WISP_VMM_CONFIG_H
#define WISP_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Process exit codes besides the guest's own status (0..255). */
#define WISP_EXIT_TIMEOUT 124 /* --timeout elapsed */
#define WISP_EXIT_ERROR	  125 /* Wisp could not start the VM: bad input, no KVM */
#define WISP_EXIT_CRASH	  126 /* the guest crashed (fault, triple fault, KVM error) */
#define WISP_EXIT_SIGNAL  128 /* + signal number: stopped by SIGINT/SIGTERM */
/* WISP_EXIT_SECCOMP (123, security/security.h): the VMM broke its seccomp filter */

#define WISP_DEFAULT_MEM      (32ull << 20)
#define WISP_MIN_MEM	      (2ull << 20)
#define WISP_MAX_MEM	      (64ull << 30)
#define LINUX_DEFAULT_MEM     (128ull << 20)
#define LINUX_DEFAULT_CMDLINE "console=ttyS0 reboot=t panic=-1"

#define VM_CONFIG_VERSION     1
#define VM_CONFIG_MAX_DEVICES 9 /* 8 virtio (VIRTIO_MAX_DEVICES) + the PCI RNG device */
#define VM_CONFIG_MAX_ARGS    256
#define VM_NAME_MAX	      63

enum vm_kind { VM_KIND_UNIKERNEL, VM_KIND_LINUX };

/* Device kinds; the table in config.c gives each its JSON type, its flag,
 * its usage and how many a VM may have. */
enum vm_dev_kind {
	VM_DEV_RNG_DEVICE, /* the course's PCI RNG device (devices/rng.c) */
	VM_DEV_RNG,	   /* virtio-rng */
	VM_DEV_BLK,	   /* virtio-blk */
	VM_DEV_NET,	   /* virtio-net on a TAP */
	VM_DEV_CONSOLE,	   /* virtio-console */
	VM_DEV_VSOCK,	   /* virtio-vsock over a unix socket */
	VM_DEV_KINDS
};

/* One device and its options; strings are owned (malloc'd). */
struct vm_dev_config {
	enum vm_dev_kind kind;
	char *path;	/* blk: the disk file; vsock: host socket; console: socket or NULL */
	bool ro;	/* blk */
	char *id;	/* blk: GET_ID string, or NULL */
	char *tap;	/* net: the TAP interface */
	uint8_t mac[6]; /* net */
	uint32_t cid;	/* vsock: the guest's CID */
	bool mac_given, cid_given; /* set by the input, not defaults (a clone's identity) */
	uint64_t size; /* blk: the disk's size in bytes, as recorded by a snapshot (0: unknown) */
	bool seeded;   /* rng-device: start from seed */
	uint32_t seed;
	struct ratelimit_conf limit; /* blk, net (each direction): all 0: none */
};

/* A whole VM. Strings are owned; mem 0 means the kind's default until
 * vm_config_finish. */
struct vm_config {
	uint32_t version;
	enum vm_kind kind;
	bool kind_given;
	char *name; /* or NULL */
	uint64_t mem;
	int cpus;
	char *image; /* unikernel */
	char **args;
	int nargs;
	char *kernel, *initrd, *cmdline; /* Linux; cmdline NULL: the default */
	int ndev;
	struct vm_dev_config dev[VM_CONFIG_MAX_DEVICES];
	/* "limits": the jailed VMM's cgroup (docs/config.md); 0: the default. */
	struct {
		uint64_t memory;    /* memory.max, bytes: at least mem */
		uint64_t cpu_milli; /* cpu.max: thousandths of a CPU */
		uint32_t pids;	    /* pids.max */
	} limits;
};

/* Description of a device kind (config.c's table). */
struct vm_dev_type {
	const char *type;  /* JSON "type" */
	const char *flag;  /* command-line option, without "--" */
	const char *usage; /* the option's accepted form */
	int max;	   /* per VM */
	bool virtio;
};

/* An empty configuration: version 1, unikernel, 1 vCPU, default memory. */
void vm_config_init(struct vm_config *c);
/* Free every string the configuration owns and make it empty again. */
void vm_config_free(struct vm_config *c);
/* The table row of a device kind. */
const struct vm_dev_type *vm_dev_type(enum vm_dev_kind k);
/* The one memory-size check: 2 MiB..64 GiB, a multiple of 4 KiB. field and
 * shown name the input in the message. */
int vm_check_mem(uint64_t mem, const char *field, const char *shown, char *err, size_t errlen);
/* Is s a valid VM name (1 to 63 of [A-Za-z0-9_.-], starting alnum)? */
bool vm_name_valid(const char *s);
/* Parse a size string (like --mem) or a JSON number of bytes into mem. */
int vm_config_set_mem(struct vm_config *c, const char *s, const char *field, char *err,
		      size_t errlen);
/* Add a device from a command-line option value (`--disk PATH,ro`): flag
 * is the option's name; value NULL for value-less options. */
int vm_config_add_flag(struct vm_config *c, const char *flag, const char *value, char *err,
		       size_t errlen);
/* Apply the kind's defaults and check the whole configuration; a mistake
 * is one line naming the field. */
int vm_config_finish(struct vm_config *c, char *err, size_t errlen);
/* Parse the JSON form (docs/config.md) and finish it. Keys in extra (a
 * NULL-terminated list, or NULL) belong to the caller and are skipped. */
int vm_config_from_json(const char *text, size_t len, const char *const *extra, struct vm_config *c,
			char *err, size_t errlen);
struct json_t;
/* The same from a parsed JSON object. */
int vm_config_from_jobj(struct json_t *o, const char *const *extra, struct vm_config *c, char *err,
			size_t errlen);
/* The JSON form with every default filled in, as a new jansson object. */
struct json_t *vm_config_to_jobj(const struct vm_config *c);
/* The same as a malloc'd compact string; NULL if out of memory. */
char *vm_config_to_json(const struct vm_config *c);
/* Make every host path absolute against the current directory (a
 * snapshot or wispd may use it from elsewhere); -errno on failure. */
int vm_config_abs_paths(struct vm_config *c);
/* Deep copy; -ENOMEM. */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src);
/* A restore is given the host side of each device again (disk path, TAP,
 * sockets): check those of given against the recorded ones (same kinds in
 * the same order, same disk size) and, if they agree, put them into rec.
 * Returns the number of mismatches, each one line in err (0: done). */
int vm_config_take_host_sides(struct vm_config *rec, const struct vm_config *given, char *err,
			      size_t errlen);
/* After vm_config_take_host_sides: the guest's identity. A MAC or CID given
 * in given replaces the recorded one; a clone (each VM made from a snapshot
 * that is not the VM itself coming back) gets a new random MAC for each
 * network device and a new random CID for vsock where none is given. */
void vm_config_take_identity(struct vm_config *rec, const struct vm_config *given, bool clone);
/* Parse a JSON array of devices (the form of "devices") into c, which
 * holds only them; one line naming the field on error. */
int vm_config_devices_from_jobj(struct json_t *a, struct vm_config *c, char *err, size_t errlen);
/* The devices of c with a host side (all: every device) as a JSON array:
 * their host side and the MAC or CID only where given (what a restore or
 * receive request sends). */
struct json_t *vm_config_host_sides_to_jobj(const struct vm_config *c, bool all);
/* Record each disk's size (for a later restore's check); -errno. */
int vm_config_record_sizes(struct vm_config *c);

/* --- build.c: the one builder --------------------------------------------
 * A configuration becomes a VM in three steps, so that callers can do the
 * first before KVM is touched and a pool can do the second ahead of time:
 * check (read and validate the image or kernel and initrd, open every device
 * backend), create (KVM VM, memory, irqchip, vCPUs, devices) and boot (load
 * the guest). A restore skips the boot and loads a snapshot instead. */
struct vm;
struct kvm;
struct serial;
struct ring;
struct vm_build {
	const struct vm_config *cfg;
	/* inputs besides cfg */
	bool restore;		   /* build for a snapshot: no image to read or load */
	bool restore_cpl0;	   /* restoring a unikernel that runs at CPL0 */
	int console_in;		   /* Linux: host input of the 8250 (-1: none) */
	struct ring *console_ring; /* the console goes there (wisp-vmm), else to stdout */
	bool console_escape;	   /* Ctrl-A x on console_in stops the VM */
	/* filled by the steps */
	struct serial *serial; /* Linux: the 8250 console (destroy after the VM stops) */
	void *priv;	       /* the builder's own state (image buffers, devices) */
};
/* Read and check the guest's files and open every device backend; no KVM.
 * err says what was wrong with which file or device. */
int vm_build_check(struct vm_build *b, char *err, size_t errlen);
/* Create the VM on kvm with its vCPUs and every device; vm zeroed first:
 * vm_build_shape with the build's shape, then vm_build_devices. */
int vm_build_create(struct vm_build *b, struct kvm *kvm, struct vm *vm, char *err, size_t errlen);
/* A VM's shape: what can be made before its guest is known (a pool shell
 * makes it ahead; docs/control-plane.md, "The pool"). */
struct vm_shape {
	uint64_t mem;
	unsigned cpus;
	bool linux_guest;
	bool cpl0; /* unikernels: runs at CPL0 (no in-kernel LAPIC) */
};
/* The shape the checked build b needs (after vm_build_check). */
void vm_shape_of(const struct vm_build *b, struct vm_shape *shape);
/* Do two shapes make the same VM? */
bool vm_shape_equal(const struct vm_shape *a, const struct vm_shape *b);
/* Create the VM of that shape on kvm: memory, the interrupt set-up
 * (vm_build_irqs), the vCPUs; vm zeroed first. The first step of
 * vm_build_create. */
int vm_build_shape(struct vm *vm, struct kvm *kvm, const struct vm_shape *shape, char *err,
		   size_t errlen);
/* The rest of vm_build_create on a VM of b's shape: the console ring and
 * every device (Linux: the 8250 and i8042; unikernels: the hypercall ports). */
int vm_build_devices(struct vm_build *b, struct vm *vm, char *err, size_t errlen);
/* Load the guest (not for a restore): the VM is then ready to run. */
int vm_build_boot(struct vm_build *b, struct vm *vm, char *err, size_t errlen);
/* After create, before the guest runs: give the devices the guest side
 * (MAC, CID) of c, a configuration of the same devices (a migration
 * receiver builds from the request and learns these from the source). */
void vm_build_set_identity(struct vm_build *b, const struct vm_config *c);
/* Free what the steps kept (the VM itself is the caller's). */
void vm_build_free(struct vm_build *b);
/* The interrupt set-up of a VM, the one decision for wisp run, pool shells,
 * restores and receivers: a Linux guest gets the in-kernel irqchip (PIC,
 * IOAPIC, LAPIC); a CPL3 unikernel only the in-kernel LAPIC (split: faster,
 * and fine if KVM lacks it); a CPL0 unikernel none, so that its HLT exits
 * and is reported. After vm_create, before the vCPUs. */
int vm_build_irqs(struct vm *vm, bool linux_guest, bool cpl0, char *err, size_t errlen);

struct jail_limits;
/* The cgroup limits of this VM (security/jail.c): its "limits", else the
 * defaults for its memory and vCPUs. True if the configuration set any. */
bool vm_config_limits(const struct vm_config *c, struct jail_limits *l);

#endif
