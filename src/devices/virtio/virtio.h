/* virtio-mmio: the transport (mmio.c), split virtqueues (virtq.c) and the
 * devices (rng.c, blk.c, net.c, console.c, vsock.c). docs/virtio.md is the
 * prose version: address window, IRQs, threads, what a hostile guest gets.
 *
 * Register layout, ring layout and device structs come from the Linux UAPI
 * headers (<linux/virtio_*.h>), which follow the virtio 1.x spec; x86 is
 * little-endian like virtio 1.x, so no byte swapping is needed.
 *
 * Threads and locking: the vCPU thread handles MMIO register accesses; an
 * I/O thread (struct ioloop) serves queue notifications (ioeventfds) and
 * backend fds. Both take the device's `lock`, so every handler below that
 * gets a struct virtio_dev runs with it held. Queue work (ops->notify) runs
 * only on the I/O thread: the register path forwards to the ioeventfd. Only
 * ops->reset and ops->activate run on the vCPU thread. */
#ifndef WISP_VIRTIO_H
#define WISP_VIRTIO_H

#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct guest_mem;
struct ratelimit_conf;
struct ioloop;
struct vcpu;
struct vm;
struct wbuf;

/* The guest-physical window for virtio-mmio devices: one 4 KiB slot each,
 * inside the MMIO hole and clear of the PCI BAR window (0xC0000000-...) and
 * the IOAPIC/LAPIC pages (0xFEC00000-). */
#define VIRTIO_MMIO_BASE      0xD0000000ull
#define VIRTIO_MMIO_SLOT_SIZE 0x1000u
#define VIRTIO_MAX_DEVICES    8 /* also the unikernel boot-info table size */
/* Legacy IRQ (GSI) of device slot i: VIRTIO_IRQ_BASE + i, as Firecracker. */
#define VIRTIO_IRQ_BASE 5

#define VIRTIO_MAX_QUEUES 4
#define VIRTQ_MAX_SIZE	  256		 /* QueueNumMax offered; power of two */
#define VIRTQ_MAX_CHAIN	  VIRTQ_MAX_SIZE /* descriptors in one chain, indirect included */
#define VIRTIO_CONFIG_MAX 64		 /* bytes of device config space */

/* --- virtq.c: split virtqueues, device side --------------------------------
 * A queue's state is the guest's configuration plus our two ring positions;
 * that, and nothing derived, is what save/restore will carry. */
struct virtq_state {
	uint16_t num; /* QueueNum: ring size, a power of two */
	bool ready;   /* QueueReady */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail;	 /* next avail ring entry to consume */
	uint16_t used_idx;	 /* used->idx as we last published it */
	uint16_t signalled_used; /* used_idx when we last interrupted (EVENT_IDX) */
	bool signalled_valid;
};

struct virtq {
	struct virtq_state s;
	/* Derived by virtq_setup from s and the negotiated features. */
	const struct guest_mem *mem;
	struct vring_desc *desc; /* host pointers into guest RAM, checked once */
	struct vring_avail *avail;
	struct vring_used *used;
	bool event_idx, indirect;
	bool broken;	    /* a malformed ring: nothing more is taken from it */
	uint32_t pushed;    /* used entries since the last interrupt decision */
	const char *error;  /* why it broke (static string) */
	uint64_t chains;    /* chains served (stats) */
	uint64_t max_bytes; /* cap on one chain's total length (device-chosen) */
	/* I/O counters, kept here so every device gets them from the one
	 * common path (virtq_pop / virtq_push): bytes in the readable buffers
	 * of the chains taken (the guest's output), and bytes the device said
	 * it wrote into the chains it returned (the guest's input). */
	uint64_t tx_bytes, rx_bytes;
	uint64_t last_r_len; /* r_len of the last chain taken (virtq_unpop) */
};

/* One popped chain: its buffers as host iovecs (the readable ones first, as
 * the spec requires of drivers), already checked to lie inside guest RAM. */
struct virtq_chain {
	uint16_t head;
	uint16_t nr_r, nr_w;   /* iov[0, nr_r) readable, iov[nr_r, nr_r+nr_w) writable */
	uint64_t r_len, w_len; /* total bytes of each kind */
	struct iovec iov[VIRTQ_MAX_CHAIN];
};

/* Check the queue's rings against guest RAM and alignment; 0, or -EINVAL with
 * q->error set. */
int virtq_setup(struct virtq *q, const struct guest_mem *mem, bool event_idx, bool indirect);
/* Forget everything (device reset). */
void virtq_reset(struct virtq *q);
/* Take the next available chain: 1 taken, 0 none available, -EINVAL if the
 * ring or chain is malformed (q->error says how; the queue is then broken). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);
/* Give back the last chain taken without using it (backend had no room). */
void virtq_unpop(struct virtq *q);
/* Return a chain to the driver with `len` bytes written into it. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* After pushes: does the driver want an interrupt now? (EVENT_IDX or the
 * NO_INTERRUPT flag.) */
bool virtq_need_interrupt(struct virtq *q);
/* Ask the driver to notify us of new buffers; true if some arrived already
 * (the caller then keeps working instead of waiting). */
bool virtq_enable_notify(struct virtq *q);
/* True if the driver has made chains available that we have not taken. */
bool virtq_has_avail(struct virtq *q);

/* Copy helpers over a chain's readable or writable part, from byte `off`;
 * return bytes copied (short if the chain is shorter). */
size_t virtq_read(const struct virtq_chain *c, size_t off, void *dst, size_t len);
size_t virtq_write(const struct virtq_chain *c, size_t off, const void *src, size_t len);
/* Fill out[] with the part [off, off+len) of the readable (w=false) or
 * writable (w=true) buffers; returns the iovec count. out has room for
 * VIRTQ_MAX_CHAIN entries. */
int virtq_slice(const struct virtq_chain *c, bool w, size_t off, size_t len, struct iovec *out);

/* --- mmio.c: the transport ------------------------------------------------- */
struct virtio_dev;

/* What a device type provides. Every hook runs with the device lock held. */
struct virtio_dev_ops {
	const char *name; /* "virtio-blk"; also the VM device-list name */
	uint32_t device_id;
	uint16_t nr_queues;
	/* The driver notified queue q (on the I/O thread). */
	void (*notify)(struct virtio_dev *d, int q);
	/* DRIVER_OK was just set; non-zero refuses it (device needs reset). */
	int (*activate)(struct virtio_dev *d);
	/* Device reset by the driver (status 0), on the vCPU thread: the I/O
	 * thread may be waiting for the lock to serve one of this device's fds. */
	void (*reset)(struct virtio_dev *d);
	/* Add the backend's own fds to the loop (at attach, before it runs). */
	int (*start)(struct virtio_dev *d);
	/* Free the backend; the loop has stopped. */
	void (*destroy)(struct virtio_dev *d);
	/* Extra lines for --stats (optional). */
	void (*stats)(struct virtio_dev *d, int fd);
	/* Snapshots: true when the device can be saved (with prepare_save
	 * first, if set: e.g. finish the requests in flight). A device without
	 * it refuses to be saved. The transport and queue state is saved for
	 * every device; a device with state of its own also sets save_state
	 * and restore_state, and its struct follows the transport's in the
	 * record, with its own version (struct virtio_dev_state). */
	bool snapshot;
	int (*prepare_save)(struct virtio_dev *d);
	/* Append the device's own state struct to out; set *version. */
	int (*save_state)(struct virtio_dev *d, struct wbuf *out, uint32_t *version);
	/* Take it back (untrusted input: check every field, refuse with a
	 * reason in err). Runs after the transport and queues are restored and
	 * ops->activate ran, before the buffers the driver had made available
	 * are served; I/O loops are paused (snap_load_state). */
	int (*restore_state)(struct virtio_dev *d, const void *buf, size_t len, uint32_t version,
			     char *err, size_t errlen);
};

/* Transport registers the driver sets (saved with the queues). */
struct virtio_mmio_state {
	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel;
	uint32_t queue_sel;
	uint32_t isr; /* InterruptStatus: VIRTIO_MMIO_INT_VRING | _CONFIG */
	uint32_t config_generation;
	uint64_t driver_features;
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	pthread_mutex_t lock;
	uint64_t device_features;
	uint8_t config[VIRTIO_CONFIG_MAX]; /* device config space, little-endian */
	uint32_t config_len;
	struct virtio_mmio_state t;
	struct virtq vq[VIRTIO_MAX_QUEUES];

	/* Wiring, set by virtio_attach. */
	struct vm *vm;
	const struct guest_mem *mem;
	struct ioloop *loop;
	bool own_loop; /* a loop of its own (WISP_IO_THREADS=device) */
	int slot;      /* index in the window; also the POLL event bit */
	uint64_t base; /* GPA of the registers */
	uint32_t irq;  /* GSI for Linux guests */
	int irqfd;     /* eventfd bound by KVM_IRQFD, or -1: POLL events */
	struct virtio_kick {
		struct virtio_dev *d;
		int q;
		int fd;		   /* ioeventfd on QueueNotify matching q */
		uint64_t internal; /* our own writes to fd, not guest notifies */
	} kick[VIRTIO_MAX_QUEUES];
	bool attached;

	/* Statistics: exits are mmio_accesses (userspace) + notifies (ioeventfd). */
	uint64_t mmio_accesses, notifies, interrupts, guest_errors;
	const char *last_error;
};

/* --- snapshots ----------------------------------------------------------------
 * A virtio device's record (its VM device-list entry's save and restore):
 * struct virtio_state_v1, the transport registers and each queue's state
 * (record version 1); then, for a device with state of its own
 * (ops->save_state), a struct virtio_dev_state and `len` bytes of the
 * device's struct, whose version that header gives. Host pointers are never
 * saved: virtq_setup derives them again. Everything here is read back from
 * an untrusted file and checked before use. */
struct virtio_state_v1 {
	struct virtio_mmio_state t;
	uint64_t device_features; /* must equal the restoring device's */
	uint32_t device_id;
	uint32_t nr_queues;
	struct virtq_state vq[VIRTIO_MAX_QUEUES]; /* those past nr_queues: unused, zero */
};
struct virtio_dev_state {
	uint32_t version; /* of the device's own struct */
	uint32_t len;	  /* its size in bytes, which follow */
};

/* virtio-console (version 1): where the MULTIPORT control exchange stands.
 * The backend (stdio, the socket and its client) is the host's, not saved;
 * no input is ever buffered in the device. */
#define VIRTIO_CONSOLE_OWE_PORT_ADD	(1u << 0)
#define VIRTIO_CONSOLE_OWE_CONSOLE_PORT (1u << 1)
struct virtio_console_state_v1 {
	uint32_t nr_ports;  /* the device's ports (config max_nr_ports): 1 */
	uint32_t port_open; /* the driver opened port 0 (PORT_OPEN): 0 or 1 */
	uint32_t owe;	    /* control messages not sent yet: VIRTIO_CONSOLE_OWE_* */
	uint32_t reserved;  /* 0 */
};

/* virtio-vsock (version 1). Streams are not saved (their host ends are the
 * saving process's sockets); a restored device has none and sends the
 * driver VIRTIO_VSOCK_EVENT_TRANSPORT_RESET. */
#define VIRTIO_VSOCK_EPHEMERAL_MIN (1u << 30)
struct virtio_vsock_state_v1 {
	uint64_t guest_cid; /* config guest_cid: must equal the restoring device's */
	uint32_t next_port; /* next host port for a host-initiated stream, >= EPHEMERAL_MIN */
	uint32_t reserved;  /* 0 */
};

int virtio_dev_save(void *opaque, struct wbuf *out, uint32_t *version);
int virtio_dev_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen);

/* Initialise the transport part of a device (before attach). */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, uint64_t features,
		    uint32_t config_len);
/* Free a device that was created but never attached. */
void virtio_dev_free(struct virtio_dev *d);
/* Give the device a slot, ioeventfds, an interrupt path and an I/O thread,
 * register it on the MMIO bus and the VM's device list (which then owns it). */
int virtio_attach(struct vm *vm, struct virtio_dev *d, char *err, size_t errlen);
/* The MMIO bus handler (exported for tests and fuzzers). */
void virtio_mmio_access(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
			bool is_write);
/* Serve queue q as if the driver had notified it (tests, fuzzers, and the
 * path of a QueueNotify write that missed the ioeventfd). */
void virtio_kick(struct virtio_dev *d, int q);
/* The same from a thread other than the I/O thread, lock held: queue q is
 * handed to the I/O thread through its ioeventfd (served here if the
 * device has none: tests). */
void virtio_kick_async(struct virtio_dev *d, int q);
/* Interrupt the driver if queue q's suppression rules let us. */
void virtio_signal_used(struct virtio_dev *d, struct virtq *q);
/* Tell the driver the device is unusable until reset (DEVICE_NEEDS_RESET +
 * config interrupt); `why` is kept for --stats. */
void virtio_needs_reset(struct virtio_dev *d, const char *why);
/* Count a guest error the device answered without a reset. */
void virtio_guest_error(struct virtio_dev *d, const char *why);
/* True when the driver finished setup (DRIVER_OK) and no reset is needed. */
bool virtio_running(const struct virtio_dev *d);
/* Pop with the error handling every device wants: a malformed chain puts the
 * device in NEEDS_RESET. Same return values as virtq_pop. */
int virtio_pop(struct virtio_dev *d, int q, struct virtq_chain *c);

/* --- per-VM: discovery and loops ------------------------------------------- */
/* Use irqfd (the VM has an in-kernel irqchip) for devices attached from now
 * on. Without it, interrupts become POLL-hypercall events (unikernels). */
void virtio_use_irqfd(struct vm *vm, bool on);
/* Append " virtio_mmio.device=4K@0x...:IRQ" for every attached device to the
 * NUL-terminated string in buf (size bytes); -ENOSPC (buf unchanged) if it
 * does not all fit. */
int virtio_mmio_cmdline(struct vm *vm, char *buf, size_t size);
/* Fill up to max entries of the unikernel boot-info device table; returns
 * the count. */
struct wisp_device;
int virtio_device_table(struct vm *vm, struct wisp_device *out, int max);
/* One device's I/O counters, summed over its queues (wispd's metrics). */
struct virtio_io_stats {
	const char *type;	     /* ops->name: "virtio-blk" */
	int slot;		     /* its place in the MMIO window */
	uint64_t ops;		     /* chains served */
	uint64_t tx_bytes, rx_bytes; /* guest -> device, device -> guest */
	uint64_t notifies, interrupts, guest_errors;
};
/* Fill up to max entries with the VM's devices' counters; returns the count. */
int virtio_io_stats(struct vm *vm, struct virtio_io_stats *out, int max);

/* --- the devices ------------------------------------------------------------ */
struct virtio_blk_opts {
	const char *path;
	bool ro;
	const char *id;			    /* GET_ID string, at most 20 bytes; NULL: file name */
	bool no_uring;			    /* serve requests synchronously instead of io_uring */
	const struct ratelimit_conf *limit; /* NULL: not rate limited */
};
struct virtio_net_opts {
	const char *tap; /* interface name */
	uint8_t mac[6];
	int tap_fd;			    /* >= 0: use this fd as the backend (tests, fuzzers) */
	const struct ratelimit_conf *limit; /* each direction's; NULL: none */
};
struct virtio_console_opts {
	const char *sock_path; /* NULL: stdin/stdout */
	int in_fd, out_fd;     /* with sock_path NULL: -1 means stdin/stdout */
};
struct virtio_vsock_opts {
	uint64_t cid;
	const char *uds_path;
};

/* Each create opens the backend (no VM needed, so a bad path fails before
 * KVM is touched) and returns the device, or NULL with err set. */
struct virtio_dev *virtio_rng_create(char *err, size_t errlen);
struct virtio_dev *virtio_blk_create(const struct virtio_blk_opts *o, char *err, size_t errlen);
struct virtio_dev *virtio_net_create(const struct virtio_net_opts *o, char *err, size_t errlen);
struct virtio_dev *virtio_console_create(const struct virtio_console_opts *o, char *err,
					 size_t errlen);
struct virtio_dev *virtio_vsock_create(const struct virtio_vsock_opts *o, char *err, size_t errlen);
/* A migrated VM's identity, learnt after its devices were made (before
 * the guest runs): the MAC a net device offers, a vsock device's CID. */
void virtio_net_set_mac(struct virtio_dev *d, const uint8_t mac[6]);
void virtio_vsock_set_cid(struct virtio_dev *d, uint32_t cid);

#endif
