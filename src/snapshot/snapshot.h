/* The snapshot layer: save, restore, clones and live migration of a VM
 * (docs/snapshot.md, docs/migration.md).
 *
 * A snapshot file is a 4 KiB header, a state section (vCPUs, irqchip,
 * clock, devices, memory map) and a page-aligned memory section laid out
 * like the guest's RAM file (holes where the guest never wrote), so that a
 * restore can map it privately and let pages load on demand. The header and
 * the state section are checksummed (XXH3-64) and parsed as untrusted input;
 * each memory extent carries its own checksum, checked with --verify and by
 * migration receivers (reading it all would make restore time grow with
 * memory size). Live migration sends the same state section over TCP after
 * pre-copy rounds of memory pages driven by KVM's dirty log.
 *
 * Library code: 0 or -errno, with a one-line reason in `err`. */
#ifndef WISP_SNAPSHOT_H
#define WISP_SNAPSHOT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

/* The CONFIG record of a snapshot: this tag, its NUL, then the VM's
 * configuration as JSON (vmm/config.h) with absolute host paths. Older
 * files hold "wisp-run" and an argument vector, or "wisp-vmm". */
#define SNAP_CONFIG_TAG "wisp-config"

#define SNAP_MAGIC	 "WISPSNAP"
#define SNAP_VERSION	 1u
#define SNAP_HEADER_SIZE 4096u
#define SNAP_STATE_MAX	 (64u << 20) /* a state section larger than this is refused */
#define SNAP_MAX_DEVICES 64
#define SNAP_MAX_MSRS	 1024
#define SNAP_MAX_CPUID	 1024
#define SNAP_XSAVE_MAX	 (64u << 10)
#define SNAP_NAME_MAX	 32

/* The file's first bytes (little-endian, as everything here). */
struct snap_header {
	char magic[8];	      /* SNAP_MAGIC */
	uint32_t version;     /* SNAP_VERSION */
	uint32_t header_size; /* SNAP_HEADER_SIZE */
	uint64_t state_off;   /* = header_size */
	uint64_t state_len;
	uint64_t state_hash; /* XXH3-64 of the state section */
	uint64_t mem_off;    /* page-aligned start of the memory section */
	uint64_t mem_size;   /* bytes of guest RAM (the memory section's length) */
	uint64_t created_ns; /* CLOCK_REALTIME of the save */
	uint64_t reserved[7];
	uint64_t header_hash; /* XXH3-64 of every byte above */
};

/* State records: a struct snap_rec, then `len` bytes, padded to 8. */
enum snap_rec_type {
	SNAP_REC_VM = 1,  /* struct snap_vm */
	SNAP_REC_CONFIG,  /* how to rebuild the VM: NUL-separated words */
	SNAP_REC_VCPU,	  /* struct snap_vcpu + its variable parts */
	SNAP_REC_IRQCHIP, /* struct snap_irqchip (in-kernel PIC + IOAPIC) */
	SNAP_REC_DEVICE,  /* struct snap_dev + the device's own state struct */
	SNAP_REC_MEMMAP,  /* struct snap_extent[]: the memory section's data */
	SNAP_REC_END,	  /* last record */
};

struct snap_rec {
	uint32_t type;
	uint32_t version;
	uint64_t len;
};

#define SNAP_VM_IRQCHIP	      (1u << 0) /* full in-kernel irqchip (Linux) */
#define SNAP_VM_SPLIT_IRQCHIP (1u << 1) /* in-kernel LAPIC only (CPL3 unikernels) */
#define SNAP_VM_RESET_STOPS   (1u << 2) /* a triple fault is a reboot (Linux) */
#define SNAP_VM_CLOCK	      (1u << 3) /* `clock` holds KVM_GET_CLOCK */

/* The VM as a whole (version 1). */
struct snap_vm {
	uint64_t mem_size;
	uint32_t nr_vcpus;
	uint32_t flags;		/* SNAP_VM_* */
	uint64_t guest_mono_ns; /* the guest's monotonic clock at the save */
	uint64_t tsc_khz;
	struct kvm_clock_data clock;
	uint32_t nr_regions;
	uint32_t pad;
	struct {
		uint64_t gpa, size, fd_offset;
	} regions[WISP_MAX_MEM_REGIONS];
};

#define SNAP_VCPU_XSAVE (1u << 0) /* xsave_len bytes follow, else fpu holds the FPU */
#define SNAP_VCPU_XCRS	(1u << 1)
#define SNAP_VCPU_LAPIC (1u << 2)
#define SNAP_VCPU_POLL	(1u << 3) /* sleeping in the POLL hypercall: poll_* hold it */

/* One vCPU (version 1): KVM's own structs, then xsave_len bytes (padded to
 * 8), nr_msrs struct kvm_msr_entry and nr_cpuid struct kvm_cpuid_entry2. */
struct snap_vcpu {
	uint32_t id;
	uint32_t flags; /* SNAP_VCPU_* */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	struct kvm_lapic_state lapic;
	uint64_t poll_arg, poll_deadline;
	uint32_t xsave_len;
	uint32_t nr_msrs;
	uint32_t nr_cpuid;
	uint32_t pad;
};

/* The in-kernel irqchip (version 1): PIC master, PIC slave, IOAPIC. */
struct snap_irqchip {
	struct kvm_irqchip chip[3];
};

/* A device's state (version 1 of this wrapper): its name and position in
 * the VM's device list, and the version of its own struct, which follows. */
struct snap_dev {
	char name[SNAP_NAME_MAX];
	uint32_t index;
	uint32_t dev_version;
};

/* A range of the memory section holding data, and its XXH3-64. */
struct snap_extent {
	uint64_t off, len, hash;
};

/* A parsed vCPU record: the fixed part copied out, the rest pointed at. */
struct snap_vcpu_img {
	struct snap_vcpu v;
	const uint8_t *xsave;
	const uint8_t *msrs;  /* nr_msrs struct kvm_msr_entry, maybe unaligned */
	const uint8_t *cpuid; /* nr_cpuid struct kvm_cpuid_entry2 */
};

struct snap_dev_img {
	struct snap_dev d;
	const uint8_t *data;
	size_t len;
};

/* A parsed state section. Pointers point into the buffer parsed. */
struct snap_image {
	struct snap_vm vm;
	const char *config;
	size_t config_len;
	int nr_vcpus;
	struct snap_vcpu_img *vcpus; /* nr_vcpus, by id */
	bool has_irqchip;
	struct snap_irqchip irqchip;
	int nr_devices;
	struct snap_dev_img devices[SNAP_MAX_DEVICES];
	const uint8_t *extents; /* nr_extents struct snap_extent, maybe unaligned */
	uint64_t nr_extents;
};

/* An open snapshot file: checked header and state. */
struct snap_file {
	int fd;
	uint64_t size;
	struct snap_header hdr;
	uint8_t *state; /* the state section, checked */
	struct snap_image img;
	struct progress *progress; /* set by the caller: the restore reports here */
};

/* Timings of one save or restore, ns (for --stats and the benchmark). */
struct snap_times {
	uint64_t pause, state, memory, sync, total;
	uint64_t mem_bytes;
};

/* --- format.c: the file format, both ways ---------------------------------- */
/* Check a header against the file size; -EINVAL (bad magic, checksum,
 * geometry), -EPROTO (another version) or -ENODATA (truncated). */
int snap_check_header(const struct snap_header *h, uint64_t file_size, char *err, size_t errlen);
/* Parse a state section (untrusted: every length and count is checked);
 * fills img, which points into buf. Free img with snap_image_free. */
int snap_parse_state(const uint8_t *buf, size_t len, uint64_t mem_size, struct snap_image *img,
		     char *err, size_t errlen);
/* Free what snap_parse_state allocated. */
void snap_image_free(struct snap_image *img);
/* Append a record header (len bytes of payload follow). */
void snap_put_rec(struct wbuf *b, uint32_t type, uint32_t version, uint64_t len);
/* XXH3-64 of a buffer. */
uint64_t snap_hash(const void *p, size_t len);
/* Fill a header for a state section and a memory section. */
void snap_fill_header(struct snap_header *h, const void *state, uint64_t state_len,
		      uint64_t mem_size);

/* --- vmstate.c: the VM's state from and to KVM ----------------------------- */
/* Append the state records of a paused vm (VM, vCPUs, irqchip, devices,
 * with `config` as the CONFIG record), all but MEMMAP and END. */
int snap_save_state(struct vm *vm, const char *config, size_t config_len, struct wbuf *out,
		    char *err, size_t errlen);
/* Load a parsed state into vm (created with the same memory size, vCPU
 * count and irqchip, devices attached in the same order, memory already
 * in place): devices, irqchip, vCPUs, clock. The devices' I/O threads are
 * paused meanwhile (snap_quiesce), so that nothing they do for the restored
 * devices reaches the guest before its interrupt state is in place. */
int snap_load_state(struct vm *vm, const struct snap_image *img, char *err, size_t errlen);
/* Stop every device's own threads from touching guest memory (pause) or
 * let them go on. */
void snap_quiesce(struct vm *vm, bool pause);

/* --- file.c: snapshot files -------------------------------------------------- */
/* Write a snapshot of vm (paused by the caller) to path, atomically: a
 * temporary file in the same directory, fsync, rename, fsync of the
 * directory. Any failure removes the temporary file and leaves path as it
 * was. With old_fd, the file the new one replaces is kept open and its fd
 * returned (-1 if none): freeing its pages (~1 ms per 8 MiB on tmpfs)
 * happens when the caller closes it, after it has answered. */
int snap_save_file(struct vm *vm, const char *path, const char *config, size_t config_len,
		   struct snap_times *t, int *old_fd, char *err, size_t errlen);
/* Where a save goes when the writer (a jailed VMM) cannot open paths: the
 * supervisor opens a temporary file beside path (snap_target_open), the
 * VMM writes into its fd (snap_save_fd), the supervisor gives it the name
 * (snap_target_commit) or removes it (snap_target_abort). */
struct snap_target {
	int fd, dfd;
	char path[4096];
	char base[256];
	char tmp[320];
};
int snap_target_open(const char *path, struct snap_target *t, char *err, size_t errlen);
/* Rename the written file to its name and fsync the directory; old_fd as
 * for snap_save_file; the time taken is added to *sync_ns if not NULL. */
int snap_target_commit(struct snap_target *t, int *old_fd, uint64_t *sync_ns, char *err,
		       size_t errlen);
void snap_target_abort(struct snap_target *t);
/* Write a snapshot of vm (paused by the caller) into fd, an empty regular
 * file, and fsync it; name is for messages. */
int snap_save_fd(struct vm *vm, int fd, const char *name, const char *config, size_t config_len,
		 struct snap_times *t, char *err, size_t errlen);
/* Open path and check its header and state section. */
int snap_open(const char *path, struct snap_file *f, char *err, size_t errlen);
/* The same on an open fd (taken over: closed by snap_close). */
int snap_open_fd(int fd, struct snap_file *f, char *err, size_t errlen);
/* The VM configuration recorded in an opened snapshot (SNAP_CONFIG_TAG),
 * checked against its state's size; -ENOENT if the file holds an older
 * record ("wisp-vmm", "wisp-run"), -EINVAL if it does not parse. */
int snap_config_record(const struct snap_file *f, struct vm_config *rec, char *err, size_t errlen);
/* The same from a parsed state of a VM of mem_size bytes (a migration's). */
int snap_config_of(const struct snap_image *img, uint64_t mem_size, struct vm_config *rec,
		   char *err, size_t errlen);
/* Close an opened snapshot. */
void snap_close(struct snap_file *f);
/* Restore an opened snapshot into vm (see snap_load_state): its memory
 * section is mapped privately, copy-on-write; with verify, every memory
 * extent's checksum is checked first (this reads all of it). */
int snap_restore_file(struct vm *vm, struct snap_file *f, bool verify, struct snap_times *t,
		      char *err, size_t errlen);

/* --- migrate.c: live migration over TCP ---------------------------------------- */
#define MIG_MAGIC   0x5047494d50534957ull /* "WISPMIGP" */
#define MIG_VERSION 1u

/* Progress of a migration, reported after each round. */
struct mig_progress {
	uint32_t round;
	uint64_t pages;	     /* sent this round */
	uint64_t bytes;	     /* sent in all */
	uint64_t dirty_rate; /* bytes per second dirtied during the last round */
	uint64_t elapsed_ns;
	bool final; /* the stop-and-copy round */
};

/* Results of a migration (source side). */
struct mig_result {
	uint32_t rounds;
	uint64_t bytes;
	uint64_t total_ns;    /* start to the target's "resumed" */
	uint64_t downtime_ns; /* vCPUs paused to the target's "resumed" */
};

/* The migration stream's end, as the receiver or the sender sees it: a
 * socket (fd), with an overall deadline (CLOCK_MONOTONIC ns; 0: at most
 * 10 s per wait) and, while waiting, watch(opaque) called whenever
 * watch_fd is readable (-1: none), which cancels the transfer by returning
 * true (-ECANCELED). fd -1: the stream is the bytes at buf (the fuzzer). */
struct mig_conn {
	int fd;
	uint64_t deadline_ns;
	int watch_fd;
	bool (*watch)(void *opaque);
	void *opaque;
	const uint8_t *buf;
	size_t len;
};

/* The transport (transport.c, the wisp-tls process) talks to its VMM over
 * a SOCK_SEQPACKET channel, one struct mig_chan per message. A receiver's
 * transport says LISTENING once bound (or FAILED), then hands over each
 * authenticated peer as a PEER with the stream's fd attached, and reports
 * each refused one (REFUSED, why). A sender's hands over one PEER once the
 * target is reached and authenticated, or FAILED. */
enum mig_chan_kind { MIG_CHAN_LISTENING = 1, MIG_CHAN_PEER, MIG_CHAN_REFUSED, MIG_CHAN_FAILED };
struct mig_chan {
	uint32_t kind;
	int32_t status; /* -errno for FAILED */
	char why[200];
};
struct sockaddr_storage;
/* Parse a numeric "ADDRESS:PORT" ("[v6]:PORT"); -EINVAL and why otherwise. */
int mig_parse_addr(const char *s, struct sockaddr_storage *ss, unsigned *len, char *err,
		   size_t errlen);
/* Send one channel message (fd attached if >= 0). 0 or -errno. */
int mig_chan_send(int chan, uint32_t kind, int status, const char *why, int fd);
/* Receive one channel message without blocking; a PEER's fd in *fd (else
 * -1). 0, -EAGAIN, -ECONNRESET (the transport is gone) or -EBADMSG. */
int mig_chan_recv(int chan, struct mig_chan *m, int *fd);

/* Send vm to the target its transport (chan) reaches: wait for the
 * transport's PEER (the target authenticated), then the hello, pre-copy
 * rounds, pause (vm_pause with self), final dirty pages and state, and the
 * target's "resumed". target names it in messages. On success the VM must
 * not run here again (the caller stops it); on any failure dirty logging is
 * off, the vCPUs are unpaused and the VM runs on. progress (may be NULL) is
 * called after each round. */
int mig_send(struct vm *vm, struct vcpu *self, int chan, const char *target, const char *config,
	     size_t config_len, void (*progress)(void *opaque, const struct mig_progress *p),
	     void *opaque, struct mig_result *res, char *err, size_t errlen);
/* What a receiver learns from a source's first message. */
struct mig_hello {
	uint64_t magic;
	uint32_t version;
	uint32_t nr_vcpus;
	uint64_t mem_size;
};
/* Read a source's hello (within c's deadline). */
int mig_read_hello(struct mig_conn *c, struct mig_hello *h, char *err, size_t errlen);
/* Check a hello against the VM the receive request asked for: -EPROTO
 * (not ours, another version) or -EINVAL (another size), why in `why`. */
int mig_check_hello(const struct mig_hello *h, uint32_t nr_vcpus, uint64_t mem_size, char *why,
		    size_t whylen);
/* Answer a hello: status 0 takes the VM, else -errno and why. */
int mig_ack(struct mig_conn *c, int status, const char *why);
/* The stream after the hello: pages into mem (mem_size bytes, every frame
 * bounds-checked and its checksum checked) and round acknowledgements,
 * until the state section, returned in *state (malloc'd, checksum checked,
 * not yet parsed). Parses untrusted bytes: callable on a buffer (c->fd -1). */
int mig_rx_frames(struct mig_conn *c, uint8_t *mem, uint64_t mem_size, uint8_t **state,
		  size_t *state_len, char *err, size_t errlen);
/* Receive memory and state into vm (created for the request's memory size
 * and vCPU count, devices attached, or attached by before_load (may be
 * NULL), which sees the parsed state first), load the state, and return
 * with the VM ready to run; the caller then calls mig_resumed. */
int mig_receive(struct mig_conn *c, struct vm *vm,
		int (*before_load)(void *opaque, const struct snap_image *img, char *err,
				   size_t errlen),
		void *opaque, char *err, size_t errlen);
/* Tell the source the VM runs here now (or failed: ok false, why). */
int mig_resumed(struct mig_conn *c, bool ok, const char *why);

/* --- transport.c: the migration transport (wisp-tls, GnuTLS) ------------------ */
/* How a transport authenticates its peer: a pre-shared key (psk_file,
 * psk_identity: default the file's, else "wisp"), or X.509 (ca, cert, key;
 * a sender checks the target's certificate against server_name), or
 * nothing, only when cleartext was asked for by name. */
struct mig_tls_opts {
	const char *psk_file, *psk_identity;
	const char *ca, *cert, *key, *server_name;
	bool cleartext;
	uint64_t deadline_ms; /* a receiver's overall deadline; a sender's to connect */
};
/* A receiver's transport: listen on addr only, hand each authenticated peer
 * to the VMM on chan, until chan hangs up or the deadline. Exit status. */
int mig_transport_listen(int chan, const char *addr, const struct mig_tls_opts *o);
/* A sender's transport: connect to addr, authenticate the target, hand the
 * stream to the VMM on chan and relay until the end. Exit status. */
int mig_transport_connect(int chan, const char *addr, const struct mig_tls_opts *o);

#endif
