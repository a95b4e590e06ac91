/* wisp-oci: an OCI runtime (runc's command line) whose containers are Wisp
 * VMs. The layer's whole API; docs/oci.md says how the engines use it.
 * Every input here (the bundle, its config.json, the state directory under
 * --root) is untrusted: functions return -errno and write one line of why
 * into err; only oci_main.c prints and exits. */
#ifndef WISP_OCI_H
#define WISP_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OCI_VERSION	  "1.0.2"
#define OCI_ERR		  512
#define OCI_MAX_ID	  128	       /* runc allows more; a socket path must stay < 108 */
#define OCI_MAX_CONFIG	  (4u << 20)   /* config.json */
#define OCI_MAX_IMAGE	  (256u << 20) /* a unikernel ELF */
#define OCI_MAX_ARGS	  256
#define OCI_MAX_HOOKS	  32
#define OCI_UNIX_PATH_MAX 108
#define OCI_MAX_MOUNTS	  8   /* bind mounts given to a Linux VM as disks */
#define OCI_MAX_MOUNT_DST 255 /* bytes of a mount's destination */

enum oci_hook_kind {
	OCI_HOOK_PRESTART,
	OCI_HOOK_CREATE_RUNTIME,
	OCI_HOOK_POSTSTART,
	OCI_HOOK_POSTSTOP,
	OCI_HOOK_KINDS
};

/* One hook of config.json's "hooks". */
struct oci_hook {
	char *path;
	char **args; /* NULL-terminated; args[0] is argv[0] */
	char **env;  /* NULL-terminated */
	int timeout; /* seconds, 0: none */
};

/* A bind mount of config.json's "mounts" that a Linux VM gets as a disk:
 * an ext4 copy of source (disks.c), mounted by tinit at dest. */
struct oci_mount {
	char *source; /* absolute (a relative one is made bundle-relative) */
	char *dest;   /* absolute, no "." or ".." components, no "//", not "/" */
	bool ro, nosuid, nodev, noexec;
};

/* What Wisp takes from a bundle's config.json. */
struct oci_spec {
	char *bundle; /* absolute */
	char *rootfs; /* absolute */
	char **args;  /* process.args, NULL-terminated, at least one */
	int nargs;
	char **env; /* process.env, NULL-terminated */
	char *cwd;  /* process.cwd */
	uint32_t uid, gid;
	bool terminal;
	uint64_t mem;		/* linux.resources.memory.limit, 0: none */
	int cpus;		/* from linux.resources.cpu (quota/period, or cpus), 0: none */
	char *netns;		/* linux.namespaces network path, NULL: none */
	char *hostname;		/* "hostname", NULL: none */
	char *resolv_conf;	/* source of the engine's /etc/resolv.conf bind, or NULL */
	char *annotations_json; /* the "annotations" object, serialised ("{}" if none) */
	bool cri_sandbox; /* io.kubernetes.cri.container-type: sandbox (a pod's pause process) */
	struct oci_hook hooks[OCI_HOOK_KINDS][OCI_MAX_HOOKS];
	int nhooks[OCI_HOOK_KINDS];
	/* The bind mounts a Linux VM gets as disks (not those the VM provides
	 * itself: /proc, /sys, /dev/..., the engine's /etc/hosts...); at most
	 * OCI_MAX_MOUNTS kept, nbinds counts them all. */
	struct oci_mount mounts[OCI_MAX_MOUNTS];
	int nmounts, nbinds;
};

/* --- bundle.c ---------------------------------------------------------- */
/* Read and check bundle/config.json into spec (bundle made absolute). */
int oci_spec_load(const char *bundle, struct oci_spec *spec, char *err, size_t errlen);
/* Free what oci_spec_load allocated. */
void oci_spec_free(struct oci_spec *spec);
/* Check a container ID: 1 to OCI_MAX_ID of [A-Za-z0-9_+.-], not "." or "..". */
int oci_id_check(const char *id, char *err, size_t errlen);

/* --- image.c ----------------------------------------------------------- */
/* Open process.args[0] inside the rootfs (PATH from process.env), resolved
 * as if the rootfs were / (openat2 RESOLVE_IN_ROOT); returns an fd. */
int oci_image_open(const struct oci_spec *spec, char *err, size_t errlen);
/* Is the open file fd a Wisp unikernel ELF (ELF64 x86-64 with the Wisp
 * note, checked by the VMM's own ELF parser)? 1 yes, 0 no, -errno. */
int oci_image_is_unikernel(int fd, char *err, size_t errlen);

/* --- disks.c ----------------------------------------------------------- */
/* The file name of mount i's disk in the container's directory. */
void oci_disk_name(int i, char *buf, size_t len);
/* Build each of spec's mounts as an ext4 image in dirfd (mke2fs -d SOURCE,
 * sized from the tree plus headroom): a copy taken now; checks that there
 * are at most OCI_MAX_MOUNTS and that each source is a directory. */
int oci_disks_build(int dirfd, const struct oci_spec *spec, char *err, size_t errlen);

/* --- state.c ----------------------------------------------------------- */
/* A container's record, state.json in its directory under --root. */
struct oci_state {
	char id[OCI_MAX_ID + 1];
	char *bundle;
	char *annotations_json;
	pid_t pid;
	uint64_t starttime; /* /proc/PID/stat field 22: tells a reused PID */
	int64_t created_ns; /* realtime */
	bool started, paused;
	char kind[16]; /* "unikernel" or "linux" */
	char *netns;   /* network namespace the TAP was made in, or NULL */
	char tap[16];  /* TAP name in netns, or "" */
};

/* Open (creating it 0700 if missing) the --root directory; it must be a
 * directory of ours, not a link, not writable by group or others. */
int oci_root_open(const char *root, char *err, size_t errlen);
/* Open container id's directory under rootfd (O_NOFOLLOW) and lock it
 * (flock, exclusive); -ENOENT: "container ID does not exist". */
int oci_dir_open(int rootfd, const char *id, char *err, size_t errlen);
/* Read state.json of the container directory dirfd. */
int oci_state_read(int dirfd, struct oci_state *st, char *err, size_t errlen);
/* Write state.json atomically (temp + rename). */
int oci_state_write(int dirfd, const struct oci_state *st, char *err, size_t errlen);
/* Free what oci_state_read allocated. */
void oci_state_free(struct oci_state *st);
/* "created", "running", "paused" or "stopped", from the record and /proc. */
const char *oci_state_status(const struct oci_state *st);
/* Is the process alive (not gone, not a zombie, not a reused PID)? */
bool oci_state_alive(const struct oci_state *st);
/* The state letter of pid in /proc/PID/stat (R, S, T, Z...), 0 if gone. */
char oci_proc_state(pid_t pid);
/* Start time of pid from /proc (0 if gone). */
uint64_t oci_proc_starttime(pid_t pid);
/* The OCI state JSON of st (malloc'd, one line). */
char *oci_state_json(const struct oci_state *st, bool pretty);
/* Remove the container directory id under rootfd and what is in it
 * (one level of plain files, never following links). */
int oci_dir_remove(int rootfd, const char *id, char *err, size_t errlen);
/* Write path atomically: a temporary beside it, then rename. */
int oci_write_atomic(int dirfd, const char *path, const char *data, size_t len, char *err,
		     size_t errlen);

/* --- hooks.c ----------------------------------------------------------- */
/* Run every hook of a kind with state_json on its stdin, in order; stops at
 * the first that fails (exit status, signal, timeout). */
int oci_hooks_run(const struct oci_spec *spec, enum oci_hook_kind kind, const char *state_json,
		  char *err, size_t errlen);
/* The hook kind's name in config.json. */
const char *oci_hook_name(enum oci_hook_kind kind);

/* --- vmconf.c ---------------------------------------------------------- */
/* Write vm.json (the Wisp VM configuration, docs/config.md) in dirfd for a
 * unikernel whose ELF is open at image_fd (named to wisp run as
 * /proc/self/fd/N). */
int oci_vmconf_unikernel(int dirfd, const struct oci_spec *spec, int image_fd, char *err,
			 size_t errlen);
/* Write vm.json for a Linux image: kernel, the initramfs built from the
 * rootfs at dirfd/image.lz4 (by `wisp image build --rootfs`), cmdline
 * extra (ip=...), and a virtio-blk disk per mount (its image in dir, the
 * container's directory by path) named on the cmdline for tinit. */
int oci_vmconf_linux(int dirfd, const char *dir, const struct oci_spec *spec, const char *kernel,
		     const char *initrd, const char *cmdline_extra, const char *tap,
		     const char *mac, char *err, size_t errlen);

/* --- imgcache.c -------------------------------------------------------- */
/* The cache key (32 hex digits) of a Linux image packed from spec's rootfs
 * with its args/env/cwd/user, by the tools named (their identity counts). */
int oci_imgcache_key(const struct oci_spec *spec, const char *const *tools, char key[33], char *err,
		     size_t errlen);
/* Hard-link the cached image of key to dirfd/name: 0, or -ENOENT on a miss. */
int oci_imgcache_get(int rootfd, const char *key, int dirfd, const char *name);
/* Keep dirfd/name in the cache under key; the least recently used go. */
void oci_imgcache_put(int rootfd, const char *key, int dirfd, const char *name);

/* --- net.c ------------------------------------------------------------- */
/* What the guest takes over from the namespace's eth0. */
struct oci_net {
	char tap[16];
	char mac[18];
	char cmdline[256]; /* ip=ADDR::GW:MASK::eth0:off */
};
/* In the network namespace at netns (we must be in it already: call from
 * a child that did setns): make TAP tap, redirect eth0 <-> tap both ways
 * with tc mirred, read eth0's MAC, address, netmask and gateway; the ip=
 * also names hostname and up to two IPv4 nameservers of the file resolv
 * (both may be NULL). */
int oci_net_setup(const char *tap, const char *hostname, const char *resolv, struct oci_net *net,
		  char *err, size_t errlen);
/* Enter the network namespace at path (setns). */
int oci_netns_enter(const char *path, char *err, size_t errlen);
/* Undo oci_net_setup in the namespace at netns (a forked child enters it):
 * delete the TAP and eth0's ingress qdisc. A namespace already gone is fine. */
int oci_net_teardown(const char *netns, const char *tap, char *err, size_t errlen);

/* --- console.c --------------------------------------------------------- */
/* Make a pty, send its master to the unix socket at path (SCM_RIGHTS) and
 * return the slave's fd. */
int oci_console_setup(const char *path, char *err, size_t errlen);

#endif
