/* The VMM control protocol: what wispd and a VMM (wisp-vmm: pool shells,
 * one process per VM) both know. wispd's own internals are in wispd.h.
 *
 * wispd and a VMM talk over one SOCK_SEQPACKET connection with the small
 * fixed-layout messages below (never HTTP: a VMM must stay tiny). At start
 * the connection is a socketpair inherited from wispd; a restarted wispd
 * reconnects through the VMM's own socket, <runtime-dir>/vms/<id>/ctl.sock.
 * The image travels as a file descriptor (SCM_RIGHTS).
 *
 * Runtime directory:
 *   wispd.sock   the HTTP API          wispd.lock   one daemon per directory
 *   shells/<id>/ pool shells           vms/<id>/    VMs: ctl.sock, console,
 *                                                   info (wispd), status (VMM) */
#ifndef WISP_CTL_PROTO_H
#define WISP_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "security/security.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define CTL_ID_LEN	   12 /* hex digits of a VM id */
#define CTL_NAME_MAX	   63
#define CTL_REASON_MAX	   256
#define CTL_IMAGE_MAX	   1024
#define CTL_CMDLINE_MAX	   4096
#define CTL_RING_DEFAULT   (64u << 10) /* console ring bytes per VM */
#define CTL_MSG_MAX	   8192
#define CTL_SOCK_NAME	   "ctl.sock"
#define CTL_CONSOLE_NAME   "console"
#define CTL_STATUS_NAME	   "status"
#define CTL_INFO_NAME	   "info"
#define CTL_WARMUP_PORT	   0x5ff /* no device: the shell's dummy run exits here */
#define WISPD_SOCKET_NAME  "wispd.sock"
#define WISPD_DEFAULT_POOL "32M=4"

/* Message types. */
enum ctl_type {
	/* wispd -> VMM */
	CTL_CONFIG = 1, /* struct ctl_config + the image fd: become this VM */
	CTL_PAUSE,	/* stop running the vCPU; reply CTL_INFO */
	CTL_RESUME,	/* run it again; reply CTL_INFO */
	CTL_QUERY,	/* reply CTL_INFO */
	CTL_DESTROY,	/* exit now, no reply */
	CTL_SAVE,	/* struct ctl_file: write a snapshot; reply CTL_INFO (op_*) or CTL_FAILED */
	CTL_MIGRATE,	/* struct ctl_target: start a live migration; reply CTL_INFO at once,
			 * then CTL_PROGRESS messages until it succeeded or failed */
	/* VMM -> wispd (all carry a struct ctl_info) */
	CTL_READY = 16, /* the shell is prepared and waits for CTL_CONFIG */
	CTL_FAILED,	/* preparing or configuring failed; `reason` says why */
	CTL_INFO,	/* state and counters; the reply to CONFIG/PAUSE/RESUME/QUERY */
	CTL_EXIT,	/* the guest stopped; the VMM exits after sending this */
	CTL_PROGRESS,	/* unsolicited: a migration's progress (mig_*), or its end */
	CTL_STATE,	/* unsolicited: the state changed (a received VM runs) */
};

/* A VM's state, as the VMM and wispd see it. */
enum ctl_state {
	CTL_STATE_SHELL = 0, /* prepared, not yet a VM */
	CTL_STATE_STARTING,  /* wispd sent CTL_CONFIG, no answer yet */
	CTL_STATE_RUNNING,
	CTL_STATE_PAUSED,
	CTL_STATE_EXITED,    /* the guest exited or halted; exit_status holds its status */
	CTL_STATE_CRASHED,   /* guest fault, KVM failure, or the VMM died; reason says which */
	CTL_STATE_RECEIVING, /* waiting for an incoming migration */
};
#define CTL_STATE_LAST CTL_STATE_RECEIVING

#define CTL_FLAG_FROM_POOL (1u << 0) /* the VM came from a pre-created shell */
#define CTL_FLAG_RESTORE   (1u << 1) /* CTL_CONFIG: the fd is a snapshot to restore */
#define CTL_FLAG_VERIFY	   (1u << 2) /* ... and check its memory checksums first */
/* CTL_CONFIG: `cmdline` holds the VM configuration as JSON (vmm/config.h),
 * for what a prepared unikernel shell cannot be: a Linux guest, devices,
 * several vCPUs (the cold path: the VMM builds it with the one builder). */
#define CTL_FLAG_VMCONFIG (1u << 3)
#define CTL_PATH_MAX	  1024

/* wispd -> VMM: the final configuration of a shell. */
struct ctl_config {
	uint32_t type; /* CTL_CONFIG */
	uint32_t flags;
	char name[CTL_NAME_MAX + 1];
	uint64_t created_wall_ns; /* CLOCK_REALTIME of the create request */
	uint64_t request_ns;	  /* CLOCK_MONOTONIC of the create request */
	char cmdline[CTL_CMDLINE_MAX];
};

/* wispd -> VMM: CTL_SAVE. */
struct ctl_file {
	uint32_t type;
	uint32_t flags;
	char path[CTL_PATH_MAX]; /* absolute */
};

/* wispd -> VMM: CTL_MIGRATE. */
struct ctl_target {
	uint32_t type;
	uint32_t flags;
	char host[256];
	char port[16];
};

/* Where a migration is, in ctl_info.mig_state. */
enum ctl_mig { CTL_MIG_NONE = 0, CTL_MIG_RUNNING, CTL_MIG_DONE, CTL_MIG_FAILED };

/* wispd -> VMM: a message without arguments. */
struct ctl_cmd {
	uint32_t type;
	uint32_t reserved;
};

/* One device's I/O counters (ctl_info.devs): virtio devices, counted in
 * their common queue path (devices/virtio/virtio.h, struct virtio_io_stats). */
#define CTL_DEV_MAX 8
struct ctl_dev_stats {
	char type[16]; /* "virtio-blk", NUL-terminated */
	uint32_t slot; /* its place in the VM's virtio-mmio window */
	uint32_t reserved;
	uint64_t ops;		     /* requests (descriptor chains) served */
	uint64_t tx_bytes, rx_bytes; /* guest -> device, device -> guest */
	uint64_t notifies, interrupts, guest_errors;
};

/* VMM -> wispd: who the VMM is and how its VM is doing. */
struct ctl_info {
	uint32_t type;	/* enum ctl_type */
	uint32_t state; /* enum ctl_state */
	uint32_t flags; /* CTL_FLAG_* */
	int32_t pid;
	int32_t exit_status; /* CTL_STATE_EXITED: the guest's status */
	int32_t error;	     /* CTL_FAILED: -errno class of the failure */
	char id[CTL_ID_LEN + 4];
	char name[CTL_NAME_MAX + 1];
	uint64_t mem; /* bytes of guest RAM */
	uint64_t created_wall_ns;
	uint64_t request_ns;	     /* CLOCK_MONOTONIC: wispd got the create request */
	uint64_t started_ns;	     /* CLOCK_MONOTONIC: the VMM entered KVM_RUN */
	uint64_t first_hypercall_ns; /* CLOCK_MONOTONIC: the guest's first hypercall */
	struct exit_stats exits;
	char reason[CTL_REASON_MAX];
	/* The last save or restore (CTL_INFO answering it), ns and bytes. */
	uint64_t op_total_ns, op_state_ns, op_memory_ns, op_sync_ns, op_bytes;
	/* Live migration (CTL_PROGRESS): enum ctl_mig, rounds, bytes sent, the
	 * dirty rate of the last round (bytes/s), and at the end the total and
	 * the downtime; `reason` says why it failed. */
	uint32_t mig_state, mig_round;
	uint64_t mig_bytes, mig_dirty_rate, mig_total_ns, mig_downtime_ns;
	/* The VM's devices' I/O counters (CTL_INFO, CTL_EXIT, CTL_STATE). */
	uint32_t nr_devs, reserved2;
	struct ctl_dev_stats devs[CTL_DEV_MAX];
};

/* --- proto.c: both sides --------------------------------------------------- */
/* Send one message, with fd attached when fd >= 0; 0 or -errno. */
int ctl_send(int sock, const void *msg, size_t len, int fd);
/* Receive one message into buf (at most cap bytes); an attached fd lands in
 * *fd (else -1). Returns the length, 0 at end of stream, or -errno
 * (-EAGAIN when a non-blocking socket has nothing). */
ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fd);
/* Is msg (len bytes, from a VMM) a well-formed struct ctl_info: a known
 * type, states in range, terminated and valid strings, a memory size wispd
 * would accept, an errno class, at most CTL_DEV_MAX devices with sane types
 * and slots? 0, or -EPROTO with why. A VMM's word is
 * input like any other (a state out of range would index arrays). */
int ctl_check_info(const void *msg, size_t len, char *why, size_t whylen);
/* "running", "paused", ... */
const char *ctl_state_name(enum ctl_state s);
/* Random VM id: CTL_ID_LEN lowercase hex digits. */
void ctl_new_id(char id[CTL_ID_LEN + 1]);
/* Is s a well-formed VM id / VM name? */
bool ctl_valid_id(const char *s);
bool ctl_valid_name(const char *s);
/* Default runtime directory: /run/wisp for root, else $XDG_RUNTIME_DIR/wisp
 * or /tmp/wisp-UID; $WISP_RUNTIME_DIR overrides. */
void ctl_default_runtime_dir(char *buf, size_t len);

/* --- vmm_shell.c: the VMM process (wisp-vmm) -------------------------------- */
/* Entry point of wisp-vmm: prepare a shell, wait for its configuration, run
 * the VM, report how it ended. Returns the process exit code. */
int shell_main(int argc, char **argv);

#endif
