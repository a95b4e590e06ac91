/* newc cpio ("070701"), the format the kernel unpacks an initramfs from
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Written from
 * the sorted tree with every varying field fixed (mtime 0, owner root,
 * inode numbers in order, no hard links), so the same tree gives the same
 * bytes. Device nodes need no root here: they are only header fields. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image/image_int.h"

#define CPIO_MAGIC   "070701"
#define CPIO_HDR     110
#define CPIO_TRAILER "TRAILER!!!"
#define OUTBUF	     (256 * 1024)

struct out {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t total;
	int err;
};

static void out_flush(struct out *o)
{
	size_t off = 0;
	while (!o->err && off < o->len) {
		ssize_t w = write(o->fd, o->buf + off, o->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = w < 0 ? -errno : -EIO;
		else
			off += (size_t)w;
	}
	o->len = 0;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	o->total += n;
	while (n && !o->err) {
		size_t k = OUTBUF - o->len < n ? OUTBUF - o->len : n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p = (const uint8_t *)p + k;
		n -= k;
		if (o->len == OUTBUF)
			out_flush(o);
	}
}

static void out_pad4(struct out *o)
{
	static const uint8_t zero[4];
	out_put(o, zero, (4 - o->total % 4) % 4);
}

static void put_header(struct out *o, uint32_t ino, uint32_t mode, uint32_t nlink, uint32_t size,
		       uint32_t rmaj, uint32_t rmin, const char *name)
{
	char h[CPIO_HDR + 1];
	size_t nl = strlen(name) + 1;
	snprintf(h, sizeof(h), "%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", CPIO_MAGIC,
		 ino, mode, 0u, 0u, nlink, 0u, size, 0u, 0u, rmaj, rmin, (uint32_t)nl, 0u);
	out_put(o, h, CPIO_HDR);
	out_put(o, name, nl);
	out_pad4(o);
}

/* Copy host file src (exactly size bytes, as stat said) into the archive. */
static int put_file(struct out *o, const char *src, uint64_t size, char *err, size_t errlen)
{
	int fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		return -errno;
	}
	uint8_t buf[65536];
	uint64_t left = size;
	while (left && !o->err) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", src, n ? strerror(errno) : "changed size");
			close(fd);
			return n ? -errno : -EIO;
		}
		out_put(o, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	close(fd);
	return 0;
}

int cpio_write(struct image_tree *t, int fd, char *err, size_t errlen)
{
	struct out o = {.fd = fd, .buf = malloc(OUTBUF)};
	if (!o.buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tree_sort(t);
	int r = 0;
	uint32_t ino = 1;
	for (size_t i = 0; i < t->n && !r && !o.err; i++, ino++) {
		const struct image_entry *e = t->v[i];
		switch (e->type) {
		case ENTRY_DIR:
			put_header(&o, ino, S_IFDIR | e->mode, 2, 0, 0, 0, e->path);
			break;
		case ENTRY_CHR:
			put_header(&o, ino, S_IFCHR | e->mode, 1, 0, e->rdev_major, e->rdev_minor,
				   e->path);
			break;
		case ENTRY_SYMLINK: {
			size_t n = strlen(e->target);
			put_header(&o, ino, S_IFLNK | 0777, 1, (uint32_t)n, 0, 0, e->path);
			out_put(&o, e->target, n);
			out_pad4(&o);
			break;
		}
		case ENTRY_FILE: {
			uint64_t size = e->size;
			struct stat st;
			if (e->src) {
				if (lstat(e->src, &st) || !S_ISREG(st.st_mode)) {
					snprintf(err, errlen, "%s: vanished while packing", e->src);
					r = -ENOENT;
					break;
				}
				size = (uint64_t)st.st_size;
			}
			if (size > UINT32_MAX) {
				snprintf(err, errlen, "/%s: larger than 4 GiB, too big for cpio",
					 e->path);
				r = -EFBIG;
				break;
			}
			put_header(&o, ino, S_IFREG | e->mode, 1, (uint32_t)size, 0, 0, e->path);
			if (e->src)
				r = put_file(&o, e->src, size, err, errlen);
			else
				out_put(&o, e->data, size);
			out_pad4(&o);
			break;
		}
		}
	}
	if (!r && !o.err) {
		put_header(&o, 0, 0, 1, 0, 0, 0, CPIO_TRAILER);
		out_flush(&o);
	}
	if (!r && o.err) {
		r = o.err;
		snprintf(err, errlen, "writing the archive: %s", strerror(-r));
	}
	free(o.buf);
	return r;
}

/* Eight hex digits at p. */
static bool hex8(const uint8_t *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i], d = c >= '0' && c <= '9'	 ? c - '0'
				  : c >= 'A' && c <= 'F' ? c - 'A' + 10
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
							 : -1;
		if (d < 0)
			return false;
		*v = *v << 4 | (uint32_t)d;
	}
	return true;
}

int cpio_find(const uint8_t *buf, size_t len, const char *name, const uint8_t **data, size_t *size)
{
	size_t off = 0;
	while (off + CPIO_HDR <= len) {
		const uint8_t *h = buf + off;
		uint32_t f[13];
		if (memcmp(h, CPIO_MAGIC, 6))
			return -EINVAL;
		for (int i = 0; i < 13; i++)
			if (!hex8(h + 6 + 8 * i, &f[i]))
				return -EINVAL;
		uint32_t fsize = f[6], nsize = f[11];
		size_t noff = off + CPIO_HDR;
		if (nsize == 0 || nsize > len - noff || buf[noff + nsize - 1] != '\0')
			return -EINVAL;
		const char *n = (const char *)buf + noff;
		size_t doff = (noff + nsize + 3) & ~(size_t)3;
		if (doff > len || fsize > len - doff)
			return -EINVAL;
		if (!strcmp(n, CPIO_TRAILER))
			return -ENOENT;
		if (!strcmp(n, name)) {
			*data = buf + doff;
			*size = fsize;
			return 0;
		}
		off = (doff + fsize + 3) & ~(size_t)3;
	}
	return -ENOENT;
}
