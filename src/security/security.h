/* The security layer: what keeps a hostile guest, a stalled consumer or a
 * local user from hurting the host or taking its control away
 * (docs/security.md). It sits beside util at the bottom: any layer may call
 * it, and it calls nothing of Wisp's but util. */
#ifndef WISP_SECURITY_H
#define WISP_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* --- outlet.c: output that never blocks its writer ---------------------------
 * Guest console output goes to whatever the user gave us: a terminal, a pipe
 * nobody reads, a socket. A write there must never block a vCPU, or a device
 * lock, or the way to a stop: the outlet writes without blocking, waits at
 * most OUTLET_STALL_MS for a consumer that takes nothing (giving up at once
 * when *stop turns non-zero), then declares it stalled and drops what it
 * cannot take at once, counting it, until the consumer takes bytes again. */
#define OUTLET_STALL_MS 200

struct outlet {
	int fd;		  /* our own non-blocking description of the target, or -1 */
	bool own;	  /* fd is ours to close */
	bool sock;	  /* a socket: written with MSG_DONTWAIT */
	bool chunked;	  /* could not reopen: write at most PIPE_BUF after POLLOUT */
	bool stalled;	  /* the consumer took nothing for OUTLET_STALL_MS */
	uint64_t dropped; /* bytes dropped for a stalled consumer */
};

/* Prepare writing to fd without blocking and without changing fd's own open
 * file description (a terminal shared with the shell stays blocking): a
 * pipe, FIFO or terminal is reopened non-blocking through /proc/self/fd, a
 * socket is written with MSG_DONTWAIT, a regular file as it is. -1 means
 * no output. */
int outlet_init(struct outlet *o, int fd);
/* Write len bytes (or drop them, see above); *stop (if not NULL) cuts the
 * wait short. Returns len, or -errno when the target failed (EPIPE...). */
int64_t outlet_write(struct outlet *o, const void *buf, size_t len, const _Atomic int *stop);
/* The same for an iovec, which it consumes (iov is advanced in place). */
int64_t outlet_writev(struct outlet *o, struct iovec *iov, int n, const _Atomic int *stop);
/* Close what outlet_init opened. */
void outlet_close(struct outlet *o);

/* --- trust.c: what a local user can plant or name -----------------------------
 * The runtime directory, the files in it, paths a client names and the
 * peers of our sockets are all checked, not trusted. */
/* Is path a directory (not a symlink) owned by us and not writable by group
 * or others? 0, or -EPERM / -errno with a one-line reason in err. */
int sec_check_private_dir(const char *path, char *err, size_t errlen);
/* Open path (relative to dirfd, as openat) without following a final
 * symlink and without blocking; it must be a regular file. -ELOOP for a
 * symlink, -EINVAL for anything but a regular file, or -errno. */
int sec_open_private_file(int dirfd, const char *path, int flags, mode_t mode);
/* Open a path a client named, read-only, without blocking on a FIFO or a
 * device: -EINVAL unless it is a regular file; the fd is then blocking. */
int sec_open_client_file(const char *path);
/* May the peer of unix socket fd talk to us: our own uid, root, or (gid not
 * (gid_t)-1) a member of group gid? -EACCES if not, -errno if unknown. The
 * peer's uid is stored in *peer_uid when not NULL. */
int sec_peer_allowed(int fd, gid_t gid, uid_t *peer_uid);
/* Who is at the other end of unix socket fd (SO_PEERCRED); -errno. */
struct sec_creds {
	uid_t uid;
	gid_t gid;
};
int sec_peer_creds(int fd, struct sec_creds *c);
/* Open files with c's rights from now on, on this thread only: when we
 * are root, its fsuid, fsgid and supplementary groups (those of its user);
 * when c is our own uid, nothing changes. -EPERM when neither (we cannot
 * act as another user). sec_fs_restore goes back. */
struct sec_fs_saved {
	bool switched;
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[256];
};
int sec_fs_become(const struct sec_creds *c, struct sec_fs_saved *s);
void sec_fs_restore(struct sec_fs_saved *s);

/* --- jail.c: a jail for every VMM ---------------------------------------------
 * The supervisor (wispd, or `wisp run --jail`'s parent) claims a uid, makes
 * the jail directory and the cgroup; the VMM enters them (docs/security.md). */
#define JAIL_UID_FIRST 100000 /* the default range of jail uids (and gids) */
#define JAIL_UID_LAST  165535

struct jail_range {
	uint32_t first, last;
};

/* What a VMM's cgroup allows. cpu_quota_us: per 100 ms period, 0: no limit. */
struct jail_limits {
	uint64_t mem_max;
	uint64_t cpu_quota_us;
	uint32_t pids_max;
};

/* What a VMM enters. */
struct jail {
	uid_t uid;
	gid_t gid;
	const char *dir;    /* an empty directory: the root (a private tmpfs on it) */
	const char *cgroup; /* the cgroup directory to join, or NULL */
};

/* Parse "FIRST-LAST" (--jail-uid-range). */
int jail_parse_range(const char *s, struct jail_range *r, char *err, size_t errlen);
/* Claim a uid of r nobody holds: a lock file per uid in directory uids_fd,
 * held (flock) for as long as the returned fd is open anywhere (the VMM
 * keeps it: its death frees the uid). *hint rotates the search. Returns the
 * fd and sets *uid, or -EUSERS when every uid is taken, or -errno. */
int jail_claim_uid(int uids_fd, const struct jail_range *r, uint32_t *hint, uid_t *uid);
/* Find the cgroup2 mount and delegate memory, cpu and pids to its wisp/
 * subtree, whose path goes to base. -errno with a one-line why otherwise. */
int jail_cgroup_init(char *base, size_t len, char *err, size_t errlen);
/* The default limits of a VM: guest memory plus the VMM's overhead, one
 * CPU per vCPU, a few dozen threads. */
void jail_limits_default(struct jail_limits *l, uint64_t guest_mem, unsigned vcpus);
/* Make base/name with limits l / change its limits / remove it (-EBUSY
 * while a process is still in it). */
int jail_cgroup_create(const char *base, const char *name, const struct jail_limits *l, char *err,
		       size_t errlen);
int jail_cgroup_set(const char *base, const char *name, const struct jail_limits *l, char *err,
		    size_t errlen);
int jail_cgroup_remove(const char *base, const char *name);
/* In the VMM, while it is still single-threaded: join the cgroup, drop the
 * capability bounding and ambient sets, set no_new_privs, make a private
 * mount namespace and mount the jail's root (not yet entered). */
int jail_prepare(const struct jail *j, char *err, size_t errlen);
/* Once everything the VMM needs is open: pivot into the root, take the
 * jail's uid and gid, drop every capability. Checked: 0 only if none is left. */
int jail_enter(const struct jail *j, char *err, size_t errlen);

/* --- seccomp.c: what each VMM thread may ask of the kernel -------------------
 * Per-thread allowlists (docs/security.md has each list and why). On by
 * default; `--seccomp=off` turns them off for debugging. A call outside a
 * thread's list ends the VMM: one line on stderr naming the call and the
 * thread's kind, then exit status WISP_EXIT_SECCOMP. */
#define WISP_EXIT_SECCOMP 123

enum sec_thread {
	SEC_THREAD_OTHER,   /* no list of its own: the process-wide filter */
	SEC_THREAD_CONTROL, /* the thread that runs vm_run: vCPU 0, control, teardown */
	SEC_THREAD_VCPU,    /* vCPUs 1..n */
	SEC_THREAD_IO,	    /* I/O loops and the serial input thread */
	SEC_THREAD_MIGRATE, /* a live migration's sender */
	SEC_THREAD_KINDS
};

/* "on" or "off" into *on; -EINVAL for anything else. */
int sec_seccomp_parse(const char *arg, bool *on);
/* Build every list's program (~0.5-1.5 ms), ahead of time where there is
 * one (wisp-vmm's shells); sec_seccomp_start does it if not done. */
int sec_seccomp_prepare(char *err, size_t errlen);
/* The one call at VMM start-up, after all set-up (memslots, devices, files
 * opened) and right before the guest runs, on the thread that will call
 * vm_run: builds every list, confines every thread of the process (TSYNC)
 * and the caller to the control list. No-op when !on. vm_name (or NULL)
 * only selects the test hook. 0, or -errno with a one-line reason. */
int sec_seccomp_start(bool on, const char *vm_name, char *err, size_t errlen);
/* The calling thread is of this kind: it narrows itself to its list if the
 * filters are on (once; cheap to call again, e.g. on every wake-up of a
 * thread started before sec_seccomp_start), and takes SIGSYS. */
void sec_seccomp_thread(enum sec_thread kind);
/* Are the filters on? */
bool sec_seccomp_active(void);
/* An async-signal-safe hook called with the trap's line before the exit
 * (wisp-vmm tells wispd). */
void sec_seccomp_set_report(void (*fn)(const char *line, size_t len));
/* "control", "vcpu", "io"... */
const char *sec_thread_name(enum sec_thread kind);

#endif
