/* The two output formats. Both are built in the staging directory and then
 * copied into the output's temporary file by our own write loop, so that a
 * full disk is reported as such (ENOSPC) whatever tool made the bytes.
 *
 * initramfs: newc cpio (cpio.c) through `lz4 -l -12`: the legacy LZ4 frame is
 * the one the kernel's initramfs unpacker reads (CONFIG_RD_LZ4).
 * ext4: the tree is materialised in staging with every time set to 0, then
 * `mke2fs -d` copies it into a fresh file system: no loop device, no root.
 * The UUID and hash seed derive from the contents, E2FSPROGS_FAKE_TIME
 * fixes the superblock's times and debugfs zeroes the inodes' ctimes, so
 * the same tree gives the same bytes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

/* Copy host file src to fd out, keeping holes (an ext4 image is sparse). */
static int copy_to(const char *src, int out, char *err, size_t errlen)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return -errno;
	}
	static uint8_t buf[1 << 16];
	static const uint8_t zero[1 << 16];
	off_t pos = 0;
	int r = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", src, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((size_t)n == sizeof(buf) && !memcmp(buf, zero, sizeof(buf))) {
			pos += n; /* a hole */
			continue;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = pwrite(out, buf + off, (size_t)(n - off), pos + off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				r = w < 0 ? -errno : -EIO;
				snprintf(err, errlen, "writing the image: %s", strerror(-r));
				goto out;
			}
			off += w;
		}
		pos += n;
	}
	if (!r && ftruncate(out, pos)) {
		r = -errno;
		snprintf(err, errlen, "writing the image: %s", strerror(errno));
	}
out:
	close(in);
	return r;
}

int image_pack_initramfs(struct image_tree *t, const char *staging, int out, char *err,
			 size_t errlen)
{
	char cpio[PATH_MAX], lz[PATH_MAX];
	snprintf(cpio, sizeof(cpio), "%s/image.cpio", staging);
	snprintf(lz, sizeof(lz), "%s/image.cpio.lz4", staging);
	int fd = open(cpio, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", cpio, strerror(errno));
		return -errno;
	}
	int r = cpio_write(t, fd, err, errlen);
	if (close(fd) && !r) {
		r = -errno;
		snprintf(err, errlen, "writing the archive: %s", strerror(errno));
	}
	char *argv[] = {"lz4", "-l", "-12", "-q", "-f", cpio, lz, NULL};
	if (!r && (r = tool_run(argv, -1, -1, err, errlen)) == -ENOENT)
		snprintf(err, errlen, "cannot run lz4 (install the lz4 package)");
	if (!r)
		r = copy_to(lz, out, err, errlen);
	return r;
}

/* Write one entry under dir, its times 0. */
static int materialise(const struct image_entry *e, const char *dir, char *err, size_t errlen)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, e->path);
	int r = 0;
	switch (e->type) {
	case ENTRY_DIR:
		if (mkdir(p, 0755) && errno != EEXIST)
			r = -errno;
		break;
	case ENTRY_SYMLINK:
		if (symlink(e->target, p))
			r = -errno;
		break;
	case ENTRY_CHR:
		return 0; /* devtmpfs provides /dev on an ext4 root */
	case ENTRY_FILE: {
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			break;
		}
		if (e->src) {
			r = copy_to(e->src, fd, err, errlen);
		} else {
			for (size_t off = 0; off < e->size && !r;) {
				ssize_t w = write(fd, e->data + off, e->size - off);
				if (w <= 0)
					r = w < 0 ? -errno : -EIO;
				else
					off += (size_t)w;
			}
		}
		if (close(fd) && !r)
			r = -errno;
		break;
	}
	}
	if (!r && e->type != ENTRY_SYMLINK && chmod(p, e->mode))
		r = -errno;
	if (r && !err[0])
		snprintf(err, errlen, "staging /%s: %s", e->path, strerror(-r));
	return r;
}

int image_pack_ext4(struct image_tree *t, const char *staging, int out, char *err, size_t errlen)
{
	char dir[PATH_MAX], img[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/ext4-root", staging);
	snprintf(img, sizeof(img), "%s/image.ext4", staging);
	if (mkdir(dir, 0755)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	tree_sort(t);
	uint64_t blocks = 0;
	int r = 0;
	err[0] = '\0';
	for (size_t i = 0; i < t->n && !r; i++) {
		r = materialise(t->v[i], dir, err, errlen);
		struct stat st;
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/%s", dir, t->v[i]->path);
		if (!r && !lstat(p, &st))
			blocks += ((uint64_t)st.st_size + 4095) / 4096 + 1;
	}
	/* Every time 0, deepest first (writing a child touches its parent). */
	static const struct timespec zero[2];
	for (size_t i = t->n; i-- > 0 && !r;) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/%s", dir, t->v[i]->path);
		utimensat(AT_FDCWD, p, zero, AT_SYMLINK_NOFOLLOW);
	}
	utimensat(AT_FDCWD, dir, zero, 0);
	if (r)
		return r;
	/* Room for the files, their inodes, metadata and a little slack. */
	uint64_t kib = (blocks * 4 * 5 / 4) + 8192;
	char size[32], inodes[32], uuid[40], ext[128];
	snprintf(size, sizeof(size), "%lluk", (unsigned long long)kib);
	snprintf(inodes, sizeof(inodes), "%zu", t->n + 256);
	char *manifest = NULL;
	uint64_t h1 = 0, h2 = 0;
	if (!tree_manifest(t, &manifest)) {
		h1 = hmap_hash_str(manifest);
		h2 = hmap_hash_u64(h1 ^ strlen(manifest));
	}
	free(manifest);
	snprintf(uuid, sizeof(uuid), "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(h1 >> 32),
		 (unsigned)(h1 >> 16) & 0xffff, (unsigned)h1 & 0xfff, (unsigned)(h2 >> 48) & 0xfff,
		 (unsigned long long)(h2 & 0xffffffffffffull));
	snprintf(ext, sizeof(ext), "hash_seed=%s,root_owner=0:0,lazy_itable_init=0", uuid);
	char *argv[] = {"mke2fs", "-q", "-F",		"-t", "ext4", "-b", "4096", "-m",
			"0",	  "-N", inodes,		"-L", "wisp", "-U", uuid,   "-E",
			ext,	  "-O", "^has_journal", "-d", dir,    img,  size,   NULL};
	setenv("E2FSPROGS_FAKE_TIME", "1", 1);
	r = tool_run(argv, -1, -1, err, errlen);
	if (r == -ENOENT)
		snprintf(err, errlen, "cannot run mke2fs (install e2fsprogs)");
	/* mke2fs -d copies each inode's ctime from the staging file, which no
	 * one can set: zero them with debugfs. */
	char script[PATH_MAX];
	snprintf(script, sizeof(script), "%s/ctime.debugfs", staging);
	FILE *f = r ? NULL : fopen(script, "we");
	if (!r && !f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", script, strerror(errno));
	}
	if (f) {
		fprintf(f, "sif / ctime 0\n");
		for (size_t i = 0; i < t->n; i++)
			if (t->v[i]->type != ENTRY_CHR && !strpbrk(t->v[i]->path, "\" \n"))
				fprintf(f, "sif \"/%s\" ctime 0\n", t->v[i]->path);
		if (fclose(f)) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", script, strerror(errno));
		}
		char *dargv[] = {"debugfs", "-w", "-f", script, img, NULL};
		if (!r)
			r = tool_run(dargv, -1, -1, err, errlen);
	}
	unsetenv("E2FSPROGS_FAKE_TIME");
	if (!r)
		r = copy_to(img, out, err, errlen);
	return r;
}
