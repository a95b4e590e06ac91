/* A Linux VM's bind mounts as disks: each source directory is copied, at
 * create, into an ext4 image in the container's directory by Debian's
 * `mke2fs -d` (no loop mount, no privilege), which the VM gets as a
 * virtio-blk disk and tinit mounts at the destination. A copy: what the
 * guest writes stays in the image, and later changes on the host are not
 * seen (docs/oci.md). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/oci.h"

#define BLOCK	     4096ull
#define HEADROOM     (32ull << 20) /* free space on top of the copy */
#define MAX_DISK     (32ull << 30) /* the largest tree copied */
#define MAX_ENTRIES  (4u << 20)
#define MKE2FS_PATHS "/usr/sbin/mke2fs", "/sbin/mke2fs"

/* The file name of mount i's disk. */
void oci_disk_name(int i, char *buf, size_t len)
{
	snprintf(buf, len, "mount%d.ext4", i);
}

/* The tree being measured (nftw has no user pointer; wisp-oci is one
 * thread). */
static uint64_t walk_bytes, walk_entries;

/* One entry: its data in whole blocks, and an inode (a block for a
 * directory's entries or a long link's target). */
static int measure_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)path, (void)type, (void)ftw;
	walk_entries++;
	walk_bytes += BLOCK;
	if (S_ISREG(sb->st_mode))
		walk_bytes += ((uint64_t)sb->st_size + BLOCK - 1) / BLOCK * BLOCK;
	if (walk_bytes > MAX_DISK || walk_entries > MAX_ENTRIES)
		return 1; /* too big: stop */
	return 0;
}

/* Run mke2fs on one mount into the open file fd; its last error line in
 * err on failure. */
static int run_mke2fs(const struct oci_mount *m, const struct stat *root, int fd, uint64_t bytes,
		      uint64_t inodes, char *err, size_t errlen)
{
	static const char *const paths[] = {MKE2FS_PATHS, NULL};
	const char *bin = "mke2fs";
	char file[64], size[32], ninodes[32], owner[64];
	int p[2];
	for (const char *const *c = paths; *c; c++)
		if (!access(*c, X_OK)) {
			bin = *c;
			break;
		}
	snprintf(file, sizeof(file), "/proc/self/fd/%d", fd);
	snprintf(size, sizeof(size), "%" PRIu64 "k", bytes >> 10);
	snprintf(ninodes, sizeof(ninodes), "%" PRIu64, inodes);
	snprintf(owner, sizeof(owner), "root_owner=%u:%u", (unsigned)root->st_uid,
		 (unsigned)root->st_gid);
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(err, errlen, "mount %.200s: pipe: %s", m->dest, strerror(errno));
		return -EIO;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "mount %.200s: fork: %s", m->dest, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -EIO;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(p[1], 2);
		fcntl(fd, F_SETFD, 0);
		/* No journal (a copy, not a database), 4 KiB blocks, no
		 * reserved blocks, enough inodes for the tree; the root
		 * directory owned as the source is. */
		execlp(bin, "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-N",
		       ninodes, "-O", "^has_journal", "-E", owner, "-d", m->source, file, size,
		       (char *)NULL);
		dprintf(2, "cannot run mke2fs (e2fsprogs): %s\n", strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char why[2048];
	size_t got = 0;
	ssize_t k;
	while (got < sizeof(why) - 1 && (k = read(p[0], why + got, sizeof(why) - 1 - got)) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)k;
	}
	why[got] = 0;
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	/* mke2fs's last non-empty line says why. */
	while (got && (why[got - 1] == '\n' || why[got - 1] == '\r'))
		why[--got] = 0;
	char *last = strrchr(why, '\n');
	snprintf(err, errlen, "mount %.200s: copying '%.200s' into a disk image failed: %.300s",
		 m->dest, m->source,
		 last	  ? last + 1
		 : why[0] ? why
			  : "mke2fs failed");
	return -EIO;
}

/* Build every mount's disk. */
int oci_disks_build(int dirfd, const struct oci_spec *spec, char *err, size_t errlen)
{
	if (spec->nbinds > OCI_MAX_MOUNTS) {
		snprintf(err, errlen,
			 "mounts: %d bind mounts; a Wisp VM takes at most %d (each is a disk)",
			 spec->nbinds, OCI_MAX_MOUNTS);
		return -E2BIG;
	}
	for (int i = 0; i < spec->nmounts; i++) {
		const struct oci_mount *m = &spec->mounts[i];
		struct stat sb;
		char name[32];
		if (stat(m->source, &sb)) {
			int e = errno;
			snprintf(err, errlen, "mount %.200s: source '%.200s': %s", m->dest,
				 m->source, strerror(e));
			return -e;
		}
		if (!S_ISDIR(sb.st_mode)) {
			snprintf(err, errlen,
				 "mount %.200s: source '%.200s' is not a directory (only a "
				 "directory can become a VM's disk)",
				 m->dest, m->source);
			return -ENOTDIR;
		}
		walk_bytes = walk_entries = 0;
		int r = nftw(m->source, measure_one, 16, FTW_PHYS);
		if (r < 0) {
			int e = errno;
			snprintf(err, errlen, "mount %.200s: reading '%.200s': %s", m->dest,
				 m->source, strerror(e));
			return -e;
		}
		if (r > 0) {
			snprintf(err, errlen,
				 "mount %.200s: source '%.200s' is too big to copy into a disk "
				 "(more than %llu GiB or %u entries)",
				 m->dest, m->source, MAX_DISK >> 30, MAX_ENTRIES);
			return -EFBIG;
		}
		/* The copy, a quarter more for ext4's own blocks, the headroom. */
		uint64_t bytes = walk_bytes + walk_bytes / 4 + HEADROOM;
		bytes = (bytes + (1ull << 20) - 1) & ~((1ull << 20) - 1);
		oci_disk_name(i, name, sizeof(name));
		int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				0600);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "mount %.200s: %s: %s", m->dest, name, strerror(e));
			return -e;
		}
		r = run_mke2fs(m, &sb, fd, bytes, walk_entries + 64, err, errlen);
		close(fd);
		if (r)
			return r;
	}
	return 0;
}
