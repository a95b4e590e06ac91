/* The VMM layer: KVM, guest memory, VMs, vCPUs and their run loop.
 *
 * Library code: functions return 0 or a negative errno and never exit; an
 * error message for the user is left in a caller-supplied buffer where the
 * errno alone would not say what went wrong. */
#ifndef WISP_VMM_H
#define WISP_VMM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/devices.h"
#include "security/security.h"

#define WISP_MAX_VCPUS	     64
#define WISP_MAX_MEM_REGIONS 4
#define WISP_ERRLEN	     256

/* One process-wide handle on /dev/kvm and what it told us. */
struct kvm {
	int fd;
	int run_size;		  /* mmap size of struct kvm_run */
	bool sync_regs;		  /* KVM_CAP_SYNC_REGS usable for regs+sregs */
	int max_vcpus;		  /* KVM_CAP_MAX_VCPUS */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, queried once */
};

/* A contiguous piece of guest RAM backed by the VM's memfd. */
struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t fd_offset;
	uint8_t *host;
};

/* Guest RAM: one memfd, shared-mapped, split into regions around holes. */
struct guest_mem {
	int memfd;
	uint64_t size; /* total bytes of RAM */
	uint8_t *base; /* host mapping of the whole memfd */
	/* A VM restored from a snapshot runs on a private (copy-on-write)
	 * mapping of the snapshot's memory section instead: memfd is then -1,
	 * and backing_fd/backing_off say where its unwritten pages come from. */
	int backing_fd;
	uint64_t backing_off;
	int nr_regions;
	struct mem_region regions[WISP_MAX_MEM_REGIONS];
};

/* Why a VM stopped. */
enum vm_stop {
	VM_RUNNING = 0,
	VM_STOP_EXIT,	  /* guest asked to exit; exit_status holds the status */
	VM_STOP_CRASH,	  /* guest fault, triple fault or KVM failure */
	VM_STOP_TIMEOUT,  /* --timeout elapsed */
	VM_STOP_SIGNAL,	  /* SIGINT/SIGTERM; stop_signal holds which */
	VM_STOP_ERROR,	  /* the VMM itself failed */
	VM_STOP_RESET,	  /* the guest reset the machine (Linux `reboot`), see reset_stops */
	VM_STOP_MIGRATED, /* the VM runs on elsewhere (live migration succeeded) */
};

/* Exit counters, by kind; per vCPU, summed for a VM. */
struct exit_stats {
	uint64_t io, mmio, hlt, shutdown, intr, hypercall, unhandled, other;
};

struct vm;
struct ring;
struct wbuf;

/* What a kind of device does beyond its bus ranges, declared once per
 * device as a static const and given to vm_add_device. Every hook is
 * optional and gets the opaque the device was added with.
 * - destroy: free the device at teardown (newest first); NULL when its
 *   creator frees it.
 * - stop: stop the device's own threads. vm_destroy calls it for every
 *   device before destroying anything, since an I/O thread may still kick
 *   a vCPU.
 * - quiesce(true) stops the device touching guest memory on its own (I/O
 *   threads) until quiesce(false); it runs for every device before any is
 *   saved.
 * - save / restore (snapshots, src/snapshot/): a device's state is an
 *   explicit struct it owns, with a version. save appends it to `out` and
 *   sets *version; restore takes back what save wrote (any version it still
 *   knows; device_state_check) and writes why it refuses into err. A device
 *   without save makes a snapshot fail: its state would otherwise be lost.
 * - stats: print the device's counters, whole lines, to fd (`wisp run
 *   --stats`; vm_print_device_stats). */
struct device_ops {
	const char *name; /* in snapshots and errors */
	void (*destroy)(void *opaque);
	void (*stop)(void *opaque);
	void (*quiesce)(void *opaque, bool pause);
	int (*save)(void *opaque, struct wbuf *out, uint32_t *version);
	int (*restore)(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen);
	void (*stats)(void *opaque, int fd);
};

/* A device attached to a VM (vm_add_device). The VM owns the entry; the
 * device registers its address ranges on a bus itself, and this list is how
 * the VM finds them all again (teardown, snapshots, stats). */
struct device {
	const struct device_ops *ops;
	void *opaque;
	struct device *next;
};

/* One virtual CPU: its fd, its kvm_run page and its thread. */
struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	_Atomic bool in_run; /* a thread is (about to be) in KVM_RUN */
	struct exit_stats stats;
	/* A POLL hypercall this vCPU is sleeping in. A snapshot taken meanwhile
	 * carries it, and the restored vCPU finishes it before running on. */
	bool poll_active;
	uint64_t poll_arg;	/* GPA of its struct wisp_hc_poll */
	uint64_t poll_deadline; /* guest monotonic ns, UINT64_MAX: for ever */
};

/* One virtual machine. */
struct vm {
	struct kvm *kvm;
	int fd;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	int nr_vcpus;
	struct vcpu vcpus[WISP_MAX_VCPUS];
	int console_fd;		/* where guest console output goes (stdout by default) */
	struct device *devices; /* newest first */
	bool reset_stops;	/* a triple fault is the guest's reboot, not a crash (Linux) */
	bool irqchip;		/* in-kernel LAPIC/IOAPIC/PIC created */
	bool split_irqchip;	/* in-kernel LAPIC only (vm_enable_split_irqchip) */

	_Atomic int stop;	 /* enum vm_stop, first reason wins */
	int exit_status;	 /* for VM_STOP_EXIT */
	int stop_signal;	 /* for VM_STOP_SIGNAL */
	char crash[WISP_ERRLEN]; /* for VM_STOP_CRASH / VM_STOP_ERROR */
	bool crash_regs_valid;	 /* registers of the vCPU that crashed */
	struct kvm_regs crash_regs;
	struct kvm_sregs crash_sregs;
	pthread_mutex_t lock; /* guards the crash fields */

	/* Device events for guests without an irqchip (the POLL hypercall). */
	pthread_mutex_t events_lock;
	uint64_t events; /* pending, bit per device (wisp_device.event) */
	int pollers;	 /* vCPUs inside POLL */
	/* Console output goes to this ring when set (VMMs under wispd), else to
	 * console_fd. */
	struct ring *console_ring;
	/* console_fd as written to: never blocking (security.h); opened by
	 * vm_run, or by the first write outside it. */
	struct outlet console_out;
	bool console_out_ready;
	/* CLOCK_MONOTONIC ns of the guest's first hypercall, 0 until then: the
	 * end point of "create request -> guest running" (bench/). */
	uint64_t first_hypercall_ns;
	/* Control channel of a single-threaded VMM under wispd (src/control/):
	 * ctl_fd turns readable when a control message waits (-1: none), and
	 * vCPU 0 calls ctl_serve(vm) on its own thread when a kick interrupts
	 * KVM_RUN or when ctl_fd turns readable inside vcpu_wait(). */
	int ctl_fd;
	void (*ctl_serve)(struct vm *vm);
	void *ctl_opaque;
	/* Pausing for a snapshot or a migration (vm_pause): every vCPU parks
	 * at an instruction boundary, its pending I/O completed. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	_Atomic bool pause_req;
	int parked;
	/* The guest's monotonic clock (TIME hypercall) is the host's plus this:
	 * a restored VM continues from its snapshot's time instead of jumping. */
	int64_t mono_offset;
};

/* --- kvm.c ------------------------------------------------------------- */
/* Open /dev/kvm (or $WISP_KVM_DEVICE), check the API and capabilities. */
int kvm_open(struct kvm *kvm, char *err, size_t errlen);
/* Close the handle and free the cached CPUID. */
void kvm_close(struct kvm *kvm);
/* Return KVM_CHECK_EXTENSION for cap on the system fd (0 if absent). */
int kvm_check_cap(struct kvm *kvm, long cap);
/* The path Wisp opens for KVM: $WISP_KVM_DEVICE or /dev/kvm. */
const char *kvm_device_path(void);

/* --- mem.c ------------------------------------------------------------- */
/* Create a memfd of `size` bytes and map it shared; no regions yet. */
int gmem_init(struct guest_mem *mem, uint64_t size);
/* Add a region [gpa, gpa+size) backed at fd_offset in the memfd. */
int gmem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, uint64_t fd_offset);
/* Ask for transparent huge pages on guest RAM (MADV_HUGEPAGE). The host
 * grants them to a memfd only when /sys/kernel/mm/transparent_hugepage/
 * shmem_enabled is advise, within_size or always. Worth it for big guests
 * (fewer nested page faults and TLB misses); not for small ones, since every
 * touched 2 MiB region then costs 2 MiB. Advisory: errors are ignored. */
void gmem_advise_huge(struct guest_mem *mem);
/* Unmap and close guest memory. */
void gmem_destroy(struct guest_mem *mem);
/* The one checked accessor: host pointer for [gpa, gpa+len) if that range
 * lies entirely inside one RAM region, else NULL. Every guest address the VMM
 * touches goes through here. */
void *gmem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copy len bytes into guest memory at gpa; -EFAULT if out of range. */
int gmem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
/* Copy len bytes out of guest memory at gpa; -EFAULT if out of range. */
int gmem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);
/* Replace guest RAM by a private (copy-on-write) mapping of fd's bytes
 * [off, off + mem->size), at the same host address so that memslots and
 * region pointers stay valid; the memfd is dropped. Pages load on demand. */
int gmem_map_file(struct guest_mem *mem, int fd, uint64_t off);
/* Call fn for each range [off, off+len) of RAM (memfd offsets) that may hold
 * something other than zeros: the memfd's data extents (SEEK_DATA), or for
 * a file-backed VM the file's extents plus the pages the guest has written
 * since (pagemap). Ranges are page-aligned and ascending. */
int gmem_extents(const struct guest_mem *mem, int (*fn)(void *opaque, uint64_t off, uint64_t len),
		 void *opaque);

/* --- vm.c -------------------------------------------------------------- */
/* Create a VM with `mem_size` bytes of RAM laid out by the x86 layer. */
int vm_create(struct vm *vm, struct kvm *kvm, uint64_t mem_size, char *err, size_t errlen);
/* Give vCPUs an in-kernel LAPIC and nothing else (call before creating
 * them). KVM flips a kernel static key, patching text, whenever the first
 * vCPU without an in-kernel LAPIC is created or the last destroyed; with one
 * a VM is created and destroyed ~0.3 ms faster here. HLT then no longer exits
 * to user space. -ENOTSUP if KVM lacks KVM_CAP_SPLIT_IRQCHIP. */
int vm_enable_split_irqchip(struct vm *vm);
/* Create vCPUs 0..n-1 with CPUID set. */
int vm_create_vcpus(struct vm *vm, int n, char *err, size_t errlen);
/* Attach a device with its hooks (struct device_ops, which must outlive the
 * VM); returns its entry, or NULL when out of memory. */
struct device *vm_add_device(struct vm *vm, const struct device_ops *ops, void *opaque);
/* Take the entry of the device with this opaque off the list (devices that
 * the caller frees itself, e.g. the 8250); no-op if there is none. */
void vm_remove_device(struct vm *vm, void *opaque);
/* Find an attached device by name (first match, newest first), or NULL. */
struct device *vm_find_device(struct vm *vm, const char *name);
/* Each device's stats hook, oldest device first (attach order). */
void vm_print_device_stats(struct vm *vm, int fd);
/* For a restore hook: is a device state of this version and len bytes the
 * `known` version of `size` bytes (at least size when at_least)? If not,
 * writes a one-line error starting with `what` ("state") and returns
 * -EINVAL. */
int device_state_check(const char *what, uint32_t version, size_t len, uint32_t known, size_t size,
		       bool at_least, char *err, size_t errlen);
/* Destroy devices, vCPUs, memory and the VM fd. Safe on a partly created VM. */
void vm_destroy(struct vm *vm);
/* Ask the VM to stop for `reason` (first caller wins) and kick all vCPUs.
 * Async-signal-safe. */
void vm_request_stop(struct vm *vm, enum vm_stop reason);
/* Stop with status from the guest's exit hypercall. */
void vm_exit_guest(struct vm *vm, int status);
/* Stop because the guest crashed; msg says how (printf-style). */
void vm_crash(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run all vCPUs (vCPU 0 on the calling thread) until the VM stops. */
int vm_run(struct vm *vm);
/* Sum the exit counters of every vCPU. */
void vm_stats(const struct vm *vm, struct exit_stats *out);
/* Log why the VM crashed with the registers of the crashed vCPU (one message). */
void vm_log_crash(struct vm *vm);
/* Mark device events pending and wake vCPUs sleeping in POLL (I/O threads). */
void vm_raise_events(struct vm *vm, uint64_t mask);
/* POLL: take pending events, sleeping up to timeout_ns if there are none. */
uint64_t vm_poll_events(struct vm *vm, struct vcpu *vcpu, uint64_t timeout_ns);
/* Write guest console bytes to the VM's console ring or console_fd;
 * returns bytes written or -errno. */
int64_t vm_console_write(struct vm *vm, const void *buf, size_t len);
/* Prepare console_fd for writes that never block (vm_run does it). */
void vm_console_open(struct vm *vm);
/* Park every vCPU except `self` (the calling vCPU, or NULL from another
 * thread) at an instruction boundary with its pending I/O completed, and
 * return once they all are; -ESRCH if the VM stopped meanwhile. */
int vm_pause(struct vm *vm, struct vcpu *self);
/* Let parked vCPUs run again. */
void vm_unpause(struct vm *vm);
/* The guest's monotonic clock, in ns (host CLOCK_MONOTONIC + mono_offset). */
uint64_t vm_guest_now(const struct vm *vm);

/* --- irq.c -------------------------------------------------------------- */
/* Create the in-kernel irqchip (LAPIC per vCPU, IOAPIC, PIC); call before
 * creating vCPUs. No PIT: Linux with kvmclock and the TSC-deadline LAPIC
 * timer does without, and it costs 12-16 ms at teardown (docs/linux-guests.md). */
int vm_create_irqchip(struct vm *vm, char *err, size_t errlen);
/* Drive interrupt line (GSI) `irq` of the in-kernel irqchip to `level`. */
int vm_irq_line(struct vm *vm, uint32_t irq, bool level);

/* --- vcpu.c ------------------------------------------------------------ */
/* Create vCPU `id`: fd, kvm_run mapping, CPUID. */
int vcpu_create(struct vm *vm, int id, char *err, size_t errlen);
/* Close the vCPU's fd and unmap kvm_run. */
void vcpu_destroy(struct vcpu *vcpu);
/* Run this vCPU's loop on the calling thread until the VM stops. */
void vcpu_loop(struct vcpu *vcpu);
/* Make the vCPU leave KVM_RUN soon (immediate_exit + signal). Async-signal-safe. */
void vcpu_kick(struct vcpu *vcpu);
/* From the vCPU's own thread, outside KVM_RUN: let KVM finish the I/O or
 * MMIO exit it is in (KVM_RUN with immediate_exit: no guest instruction
 * runs), so that its registers describe an instruction boundary. */
int vcpu_complete_io(struct vcpu *vcpu);
/* Record this vCPU's registers as the VM's crash registers. */
void vcpu_save_crash_regs(struct vcpu *vcpu);
/* Sleep until timeout_ns passes (UINT64_MAX: for ever) or the vCPU is kicked. */
void vcpu_wait(struct vcpu *vcpu, uint64_t timeout_ns);
/* Block the kick signal in the calling thread and install its no-op handler;
 * the signal is unblocked only inside KVM_RUN and vcpu_wait(). */
int vcpu_signals_init(void);

#define VCPU_KICK_SIGNAL SIGUSR1

#endif
