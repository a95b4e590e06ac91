/* /dev/kvm: open it, check that it is the API we speak and has every
 * capability Wisp relies on, and cache what is expensive to ask twice
 * (KVM_GET_SUPPORTED_CPUID costs ~0.3 ms here). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "vmm/vmm.h"

/* Capabilities without which Wisp cannot run a guest at all. */
static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	{KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
};

const char *kvm_device_path(void)
{
	const char *p = getenv("WISP_KVM_DEVICE");
	return p && *p ? p : "/dev/kvm";
}

int kvm_check_cap(struct kvm *kvm, long cap)
{
	int r = ioctl(kvm->fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

/* KVM_GET_SUPPORTED_CPUID needs a buffer large enough; grow until it fits. */
static int query_cpuid(struct kvm *kvm)
{
	for (int n = 256; n <= 4096; n *= 2) { /* 256 fits every CPU seen so far */
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = (uint32_t)n;
		if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG)
			return -e;
	}
	return -E2BIG;
}

/* --- The CPUID cache ------------------------------------------------------
 * KVM_GET_SUPPORTED_CPUID gives the same answer for the life of a KVM
 * instance and costs ~0.3 ms on nested KVMs (each host CPUID traps to the
 * outer hypervisor): a sixth of `wisp run`'s launch->exit. So the answer is
 * kept in <runtime-dir>/cpuid, keyed by the boot and by the identity of the
 * /dev/kvm node (reloading the module makes a new node). A file that is not
 * ours, is writable by others, has another key or the wrong size is ignored
 * and replaced. WISP_CPUID_CACHE=0 turns the cache off. */
#define CPUID_CACHE_MAGIC "WISPCPU1"
#define CPUID_CACHE_MAX	  4096 /* entries */

struct cpuid_cache_key {
	char magic[8];
	char boot_id[40]; /* /proc/sys/kernel/random/boot_id */
	uint64_t rdev, ino, ctime_sec, ctime_nsec;
	uint32_t api_version, nent;
};

static bool cpuid_cache_key(struct kvm *kvm, struct cpuid_cache_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->magic, CPUID_CACHE_MAGIC, 8);
	struct stat st;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, k->boot_id, sizeof(k->boot_id) - 1);
	close(fd);
	if (n < 32 || fstat(kvm->fd, &st) < 0)
		return false;
	k->rdev = st.st_rdev;
	k->ino = st.st_ino;
	k->ctime_sec = (uint64_t)st.st_ctim.tv_sec;
	k->ctime_nsec = (uint64_t)st.st_ctim.tv_nsec;
	k->api_version = KVM_API_VERSION;
	return true;
}

static void cpuid_cache_path(char *buf, size_t len)
{
	char dir[200];
	util_runtime_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/cpuid", dir);
}

/* Read the cached table if it is valid for this key; NULL otherwise. */
static struct kvm_cpuid2 *cpuid_cache_read(const struct cpuid_cache_key *want)
{
	char path[256];
	cpuid_cache_path(path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	struct cpuid_cache_key k;
	struct kvm_cpuid2 *c = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || read(fd, &k, sizeof(k)) != (ssize_t)sizeof(k))
		goto out;
	uint32_t nent = k.nent;
	k.nent = 0;
	if (memcmp(&k, want, sizeof(k)) || nent == 0 || nent > CPUID_CACHE_MAX ||
	    (uint64_t)st.st_size != sizeof(k) + (uint64_t)nent * sizeof(c->entries[0]))
		goto out;
	c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	if (!c)
		goto out;
	c->nent = nent;
	ssize_t body = (ssize_t)(nent * sizeof(c->entries[0]));
	if (read(fd, c->entries, (size_t)body) != body) {
		free(c);
		c = NULL;
	}
out:
	close(fd);
	return c;
}

/* Best effort: a cache that cannot be written only costs the next start. */
static void cpuid_cache_write(const struct cpuid_cache_key *key, const struct kvm_cpuid2 *c)
{
	char path[256], tmp[272], dir[200];
	util_runtime_dir(dir, sizeof(dir));
	mkdir(dir, 0700); /* usually there already */
	cpuid_cache_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return;
	struct cpuid_cache_key k = *key;
	k.nent = c->nent;
	size_t body = c->nent * sizeof(c->entries[0]);
	bool ok = write(fd, &k, sizeof(k)) == (ssize_t)sizeof(k) &&
		  write(fd, c->entries, body) == (ssize_t)body;
	close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

/* KVM's supported CPUID, from the cache when it is valid, else queried
 * (and cached). */
static int cached_cpuid(struct kvm *kvm)
{
	const char *env = getenv("WISP_CPUID_CACHE");
	struct cpuid_cache_key key;
	bool use = !(env && !strcmp(env, "0")) && cpuid_cache_key(kvm, &key);
	if (use && (kvm->cpuid = cpuid_cache_read(&key)))
		return 0;
	int r = query_cpuid(kvm);
	if (!r && use)
		cpuid_cache_write(&key, kvm->cpuid);
	return r;
}

int kvm_open(struct kvm *kvm, char *err, size_t errlen)
{
	memset(kvm, 0, sizeof(*kvm));
	const char *path = kvm_device_path();
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int e = errno;
		const char *hint = e == ENOENT ? " (is the kvm module loaded? is this a VM without "
						 "nested virtualisation?)"
				   : e == EACCES ? " (add your user to the 'kvm' group or fix the "
						   "device's permissions)"
						 : "";
		snprintf(err, errlen, "%s: %s%s", path, strerror(e), hint);
		return -e;
	}
	int v = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, Wisp needs %d", path, v,
			 KVM_API_VERSION);
		kvm_close(kvm);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (!kvm_check_cap(kvm, required_caps[i].cap)) {
			snprintf(err, errlen, "%s: missing capability %s", path,
				 required_caps[i].name);
			kvm_close(kvm);
			return -ENOTSUP;
		}
	}
	kvm->run_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "%s: bad KVM_GET_VCPU_MMAP_SIZE %d", path, kvm->run_size);
		kvm_close(kvm);
		return -ENOTSUP;
	}
	/* SYNC_REGS saves two ioctls per vCPU start; fall back to SET_[S]REGS. */
	int sync = kvm_check_cap(kvm, KVM_CAP_SYNC_REGS);
	kvm->sync_regs = getenv("WISP_NO_SYNC_REGS")
				 ? false
				 : (sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ==
					   (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	kvm->max_vcpus = kvm_check_cap(kvm, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = kvm_check_cap(kvm, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4; /* the documented minimum when the cap is absent */
	int r = cached_cpuid(kvm);
	if (r < 0) {
		snprintf(err, errlen, "%s: KVM_GET_SUPPORTED_CPUID: %s", path, strerror(-r));
		kvm_close(kvm);
		return r;
	}
	return 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
	free(kvm->cpuid);
	kvm->cpuid = NULL;
}
