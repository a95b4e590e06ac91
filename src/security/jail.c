/* The jail of a VMM (docs/security.md, "The jail"): a mount namespace whose
 * root is an empty, read-only tmpfs (with a /proc that shows only the VMM's
 * own processes), a uid and gid of its own from a configured range, no
 * capabilities in any set, PR_SET_NO_NEW_PRIVS, and a cgroup v2 of its own
 * with memory, CPU and pids limits.
 *
 * Everything the VMM needs from the host (/dev/kvm, the guest's memory,
 * images, disks, taps, sockets) is opened before it enters the jail and
 * kept as file descriptors: the jail holds no host file at all.
 *
 * Two steps, because unshare(CLONE_NEWNS) needs a single-threaded process
 * and device set-up starts threads: jail_prepare() right at start (the
 * private mount namespace, the tmpfs root mounted but not yet entered, the
 * bounding set, no_new_privs and the cgroup: all inherited by threads made
 * later), jail_enter() once the VM is built (pivot_root, the uid and gid,
 * which glibc applies to every thread). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "security/security.h"
#include "util/util.h"

/* The memory a VMM needs beyond its guest's: the binary, page tables,
 * KVM's per-VM memory, device queues, a sanitizer's shadow in test
 * builds. */
#define JAIL_MEM_OVERHEAD (192ull << 20)
#define JAIL_PIDS_DEFAULT 64
#define CPU_PERIOD_US	  100000

int jail_parse_range(const char *s, struct jail_range *r, char *err, size_t errlen)
{
	char first[24];
	const char *dash = strchr(s, '-');
	uint64_t a, b;
	if (!dash || (size_t)(dash - s) >= sizeof(first)) {
		snprintf(err, errlen, "--jail-uid-range '%s': use FIRST-LAST, e.g. 100000-165535",
			 s);
		return -EINVAL;
	}
	memcpy(first, s, (size_t)(dash - s));
	first[dash - s] = 0;
	if (opt_parse_uint(first, 1, 0xfffffffe, &a) ||
	    opt_parse_uint(dash + 1, 1, 0xfffffffe, &b) || b < a) {
		snprintf(err, errlen,
			 "--jail-uid-range '%s': FIRST and LAST must be uids from 1 to 4294967294, "
			 "FIRST <= LAST",
			 s);
		return -EINVAL;
	}
	r->first = (uint32_t)a;
	r->last = (uint32_t)b;
	return 0;
}

int jail_claim_uid(int uids_fd, const struct jail_range *r, uint32_t *hint, uid_t *uid)
{
	uint64_t count = (uint64_t)r->last - r->first + 1;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t u = r->first + (uint32_t)((*hint + i) % count);
		char name[16];
		snprintf(name, sizeof(name), "%u", u);
		int fd = openat(uids_fd, name,
				O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == ELOOP || errno == ENXIO || errno == EACCES)
				continue; /* something planted: not this one */
			return -errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*hint = (uint32_t)((*hint + i + 1) % count);
			*uid = u;
			return fd;
		}
		close(fd);
	}
	return -EUSERS;
}

/* --- cgroup v2 ------------------------------------------------------------------ */

/* Write s to dir/file. 0 or -errno. */
static int write_file(const char *dir, const char *file, const char *s)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = n < 0 ? errno : 0;
	close(fd);
	return n < 0 ? -e : 0;
}

/* Does the controllers list in dir/file name every one of memory, cpu,
 * pids? */
static bool has_controllers(const char *dir, const char *file)
{
	char path[PATH_MAX], buf[512];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf + 1, sizeof(buf) - 3);
	close(fd);
	if (n < 0)
		return false;
	buf[0] = ' ';
	buf[n + 1] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	strcat(buf, " ");
	return strstr(buf, " memory ") && strstr(buf, " cpu ") && strstr(buf, " pids ");
}

int jail_cgroup_init(char *base, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024], mnt[512] = "";
	while (f && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPER */
		char *sep = strstr(line, " - ");
		char point[512];
		if (sep && !strncmp(sep, " - cgroup2 ", 11) &&
		    sscanf(line, "%*s %*s %*s %*s %511s", point) == 1) {
			snprintf(mnt, sizeof(mnt), "%s", point);
			break;
		}
	}
	if (f)
		fclose(f);
	if (!mnt[0]) {
		snprintf(err, errlen, "no cgroup2 file system is mounted");
		return -ENOENT;
	}
	if (!has_controllers(mnt, "cgroup.controllers")) {
		snprintf(err, errlen,
			 "the cgroup2 hierarchy at %s lacks the memory, cpu or pids "
			 "controller (held by cgroup v1?)",
			 mnt);
		return -ENOTSUP;
	}
	int r = has_controllers(mnt, "cgroup.subtree_control")
			? 0
			: write_file(mnt, "cgroup.subtree_control", "+memory +cpu +pids");
	if ((size_t)snprintf(base, len, "%s/wisp", mnt) >= len) {
		snprintf(err, errlen, "cgroup path too long");
		return -ENAMETOOLONG;
	}
	if (!r && mkdir(base, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (!r && !has_controllers(base, "cgroup.subtree_control"))
		r = write_file(base, "cgroup.subtree_control", "+memory +cpu +pids");
	if (r) {
		snprintf(err, errlen, "cannot delegate memory, cpu and pids to %s: %s", base,
			 strerror(-r));
		return r;
	}
	return 0;
}

void jail_limits_default(struct jail_limits *l, uint64_t guest_mem, unsigned vcpus)
{
	/* Twice the guest: a save's pages (page cache, or tmpfs) are charged to
	 * the VMM that writes them, and a whole snapshot must fit beside the
	 * guest's own memory. */
	l->mem_max = 2 * guest_mem + JAIL_MEM_OVERHEAD;
	l->cpu_quota_us = (uint64_t)(vcpus ? vcpus : 1) * CPU_PERIOD_US;
	l->pids_max = JAIL_PIDS_DEFAULT + vcpus;
}

int jail_cgroup_set(const char *base, const char *name, const struct jail_limits *l, char *err,
		    size_t errlen)
{
	char dir[PATH_MAX], v[64];
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (l->mem_max)
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->mem_max);
	else
		snprintf(v, sizeof(v), "max");
	int r = write_file(dir, "memory.max", v);
	const char *what = "memory.max";
	if (!r) {
		what = "cpu.max";
		if (l->cpu_quota_us)
			snprintf(v, sizeof(v), "%llu %u", (unsigned long long)l->cpu_quota_us,
				 CPU_PERIOD_US);
		else
			snprintf(v, sizeof(v), "max %u", CPU_PERIOD_US);
		r = write_file(dir, "cpu.max", v);
	}
	if (!r) {
		what = "pids.max";
		snprintf(v, sizeof(v), "%u", l->pids_max);
		r = write_file(dir, "pids.max", v);
	}
	if (r)
		snprintf(err, errlen, "cgroup %s: %s %s: %s", dir, what, v, strerror(-r));
	return r;
}

int jail_cgroup_create(const char *base, const char *name, const struct jail_limits *l, char *err,
		       size_t errlen)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "cgroup %s: %s", dir, strerror(e));
		return -e;
	}
	int r = jail_cgroup_set(base, name, l, err, errlen);
	if (r)
		rmdir(dir);
	return r;
}

int jail_cgroup_remove(const char *base, const char *name)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* --- the VMM's side ------------------------------------------------------------ */

int jail_prepare(const struct jail *j, char *err, size_t errlen)
{
	int r;
	if (j->cgroup && j->cgroup[0] && (r = write_file(j->cgroup, "cgroup.procs", "0"))) {
		snprintf(err, errlen, "jail: cannot join cgroup %s: %s", j->cgroup, strerror(-r));
		return r;
	}
	/* The bounding and ambient sets and no_new_privs are per thread:
	 * set now, they hold for every thread made later. */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
			break; /* past the kernel's last capability */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		r = -errno;
		snprintf(err, errlen, "jail: clearing ambient capabilities: %s", strerror(errno));
		return r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "jail: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return r;
	}
	if (unshare(CLONE_NEWNS) < 0) {
		r = -errno;
		snprintf(err, errlen, "jail: new mount namespace: %s", strerror(errno));
		return r;
	}
	/* Nothing we mount reaches the host, nothing the host mounts reaches us. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "jail: making mounts private: %s", strerror(errno));
		return r;
	}
	char proc[PATH_MAX];
	snprintf(proc, sizeof(proc), "%s/proc", j->dir);
	if (mount("wisp-jail", j->dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,nr_inodes=8,mode=0755") < 0 ||
	    mkdir(proc, 0555) < 0) {
		r = -errno;
		snprintf(err, errlen, "jail: root %s: %s", j->dir, strerror(errno));
		return r;
	}
	/* /proc with only our own processes (sanitizers and /proc/self/pagemap
	 * need it); without `subset=pid` on older kernels. */
	if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "hidepid=invisible,subset=pid") < 0 &&
	    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") < 0) {
		r = -errno;
		snprintf(err, errlen, "jail: mounting /proc: %s", strerror(errno));
		return r;
	}
	return 0;
}

int jail_enter(const struct jail *j, char *err, size_t errlen)
{
	int r;
	const char *step = "pivot_root";
	if (chdir(j->dir) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    (step = "detaching the host's root", umount2(".", MNT_DETACH) < 0) ||
	    (step = "chdir /", chdir("/") < 0) ||
	    (step = "read-only root",
	     mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		   NULL) < 0))
		goto fail;
	step = "setting the uid and gid";
	if (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
	    setresuid(j->uid, j->uid, j->uid) < 0)
		goto fail;
	/* Leaving uid 0 emptied the permitted and effective sets; the
	 * inheritable set is cleared by hand. */
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {0};
	step = "dropping capabilities";
	if (syscall(SYS_capset, &h, d) < 0)
		goto fail;
	/* Our /proc/self belongs to us again (leaving root made it root's):
	 * no other process has this uid, so this opens us to nobody. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (syscall(SYS_capget, &h, d) < 0 || d[0].effective || d[0].permitted ||
	    d[0].inheritable || d[1].effective || d[1].permitted || d[1].inheritable ||
	    getuid() != j->uid || geteuid() != j->uid || getgid() != j->gid) {
		snprintf(err, errlen, "jail: privileges still held after dropping them");
		return -EPERM;
	}
	return 0;
fail:
	r = -errno;
	snprintf(err, errlen, "jail: %s: %s", step, strerror(errno));
	return r;
}
