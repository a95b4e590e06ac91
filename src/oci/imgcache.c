/* The cache of packed Linux images: `create` of a Linux image packs its
 * rootfs with `wisp image build`, whose lz4 -12 costs most of the time
 * (0.55 of 0.73 s for busybox here). Engines give every container a fresh
 * copy of the same image, so the packed initramfs is kept under
 * ROOT/@cache, named by a hash of what went into it: every rootfs entry
 * (path, type, mode, owner, size, link target, contents), process.args,
 * env, cwd, user, and the identity of the tools that pack it. */
#define XXH_INLINE_ALL
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "oci/oci.h"

#define CACHE_KEEP	  16	 /* entries kept; the oldest go first */
#define CACHE_MAX_ENTRIES 200000 /* files in a rootfs we are willing to hash */

/* One rootfs entry, as a line to sort. */
struct line {
	char *s;
};

/* A growing list of lines. */
struct lines {
	struct line *v;
	size_t n, cap;
};

/* Append a formatted line. */
static int lines_add(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lines_add(struct lines *l, const char *fmt, ...)
{
	if (l->n == CACHE_MAX_ENTRIES)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct line *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&l->v[l->n].s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Hash a regular file's contents through fd. */
static int hash_fd(int fd, uint64_t *h)
{
	static char buf[1 << 16];
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		XXH3_64bits_update(&st, buf, (size_t)n);
	}
	*h = XXH3_64bits_digest(&st);
	return 0;
}

/* Walk dirfd (path rel) recursively, never following links. */
static int walk(int dirfd, const char *rel, struct lines *l, int depth)
{
	if (depth > 64)
		return -ELOOP;
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return -errno;
	}
	struct dirent *e;
	int r = 0;
	while (!r && (e = readdir(d))) {
		struct stat sb;
		char path[4096];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW)) {
			r = -errno;
			break;
		}
		if (snprintf(path, sizeof(path), "%s/%s", rel, e->d_name) >= (int)sizeof(path)) {
			r = -ENAMETOOLONG;
			break;
		}
		uint64_t h = 0;
		char target[4096] = "";
		if (S_ISREG(sb.st_mode)) {
			int fd = openat(dirfd, e->d_name,
					O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				r = -errno;
			else {
				r = hash_fd(fd, &h);
				close(fd);
			}
		} else if (S_ISLNK(sb.st_mode)) {
			ssize_t n = readlinkat(dirfd, e->d_name, target, sizeof(target) - 1);
			if (n >= 0)
				target[n] = 0;
		}
		if (!r)
			r = lines_add(l, "%s\t%o\t%u\t%u\t%jd\t%016" PRIx64 "\t%s", path,
				      (unsigned)sb.st_mode, (unsigned)sb.st_uid,
				      (unsigned)sb.st_gid, (intmax_t)sb.st_size, h, target);
		if (!r && S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd, e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sub < 0 ? -errno : walk(sub, path, l, depth + 1);
		}
	}
	closedir(d);
	return r;
}

/* Order lines by their bytes. */
static int cmp_line(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->s, ((const struct line *)b)->s);
}

/* The cache key of a Linux image. */
int oci_imgcache_key(const struct oci_spec *spec, const char *const *tools, char key[33], char *err,
		     size_t errlen)
{
	struct lines l = {0};
	int r, fd = open(spec->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "rootfs '%.200s': %s", spec->rootfs, strerror(-r));
		return r;
	}
	r = walk(fd, "", &l, 0);
	if (r) {
		snprintf(err, errlen, "rootfs '%.200s': hashing it: %s", spec->rootfs,
			 strerror(-r));
		goto out;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_line);
	XXH3_state_t st;
	XXH3_128bits_reset(&st);
	for (size_t i = 0; i < l.n; i++)
		XXH3_128bits_update(&st, l.v[i].s, strlen(l.v[i].s) + 1);
	/* What the init is told, and the tools that pack it. */
	for (int i = 0; i < spec->nargs; i++)
		XXH3_128bits_update(&st, spec->args[i], strlen(spec->args[i]) + 1);
	XXH3_128bits_update(&st, "\1env", 5);
	for (char **e = spec->env; e && *e; e++)
		XXH3_128bits_update(&st, *e, strlen(*e) + 1);
	char misc[4200];
	int n = snprintf(misc, sizeof(misc), "\2%s\t%u:%u", spec->cwd, spec->uid, spec->gid);
	XXH3_128bits_update(&st, misc, (size_t)n);
	for (const char *const *t = tools; *t; t++) {
		struct stat sb;
		if (stat(*t, &sb))
			memset(&sb, 0, sizeof(sb));
		n = snprintf(misc, sizeof(misc), "\3%s\t%ju\t%ju\t%jd\t%jd.%09ld", *t,
			     (uintmax_t)sb.st_dev, (uintmax_t)sb.st_ino, (intmax_t)sb.st_size,
			     (intmax_t)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
		XXH3_128bits_update(&st, misc, (size_t)n);
	}
	XXH128_hash_t h = XXH3_128bits_digest(&st);
	snprintf(key, 33, "%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64, (uint64_t)h.low64);
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].s);
	free(l.v);
	return r;
}

/* Open (creating it) ROOT/@cache: a directory of ours, not a link. */
static int cache_dir(int rootfd)
{
	struct stat sb;
	mkdirat(rootfd, "@cache", 0700); /* "@" is in no container ID */
	int fd = openat(rootfd, "@cache", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &sb) || sb.st_uid != geteuid() || (sb.st_mode & 022))) {
		close(fd);
		return -EACCES;
	}
	return fd < 0 ? -errno : fd;
}

/* Link the cached image KEY.lz4 to dirfd/name; 0 on a hit, -ENOENT on a miss. */
int oci_imgcache_get(int rootfd, const char *key, int dirfd, const char *name)
{
	char file[64];
	struct stat sb;
	int c = cache_dir(rootfd), r = 0;
	if (c < 0)
		return c;
	snprintf(file, sizeof(file), "%s.lz4", key);
	if (fstatat(c, file, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode) ||
	    sb.st_uid != geteuid())
		r = -ENOENT;
	else if (linkat(c, file, dirfd, name, 0))
		r = -errno;
	else
		utimensat(c, file, NULL, AT_SYMLINK_NOFOLLOW); /* recently used */
	close(c);
	return r;
}

/* Keep dirfd/name as the cached image KEY.lz4, and drop the oldest beyond CACHE_KEEP. */
void oci_imgcache_put(int rootfd, const char *key, int dirfd, const char *name)
{
	char file[64];
	int c = cache_dir(rootfd);
	if (c < 0)
		return;
	snprintf(file, sizeof(file), "%s.lz4", key);
	if (linkat(dirfd, name, c, file, 0) && errno != EEXIST) {
		close(c);
		return; /* not cached: the next create packs again */
	}
	DIR *d = fdopendir(dup(c));
	struct {
		char name[64];
		struct timespec t;
	} all[CACHE_KEEP + 8];
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		struct stat sb;
		size_t len = strlen(e->d_name);
		if (len != 36 || strcmp(e->d_name + 32, ".lz4") ||
		    fstatat(c, e->d_name, &sb, AT_SYMLINK_NOFOLLOW))
			continue;
		if (n == sizeof(all) / sizeof(all[0])) {
			unlinkat(c, e->d_name, 0); /* far too many: just drop it */
			continue;
		}
		memcpy(all[n].name, e->d_name, len + 1); /* len is 36 */
		all[n++].t = sb.st_mtim;
	}
	if (d)
		closedir(d);
	while (n > CACHE_KEEP) {
		size_t old = 0;
		for (size_t i = 1; i < n; i++)
			if (all[i].t.tv_sec < all[old].t.tv_sec ||
			    (all[i].t.tv_sec == all[old].t.tv_sec &&
			     all[i].t.tv_nsec < all[old].t.tv_nsec))
				old = i;
		unlinkat(c, all[old].name, 0);
		all[old] = all[--n];
	}
	close(c);
}
