/* The dependency closure, as Tinyx does it, but from the files themselves:
 * a file goes into the image with every symlink on its way, and if it is
 * an ELF, its dynamic loader and each DT_NEEDED library, found where the
 * loader will look for it (DT_RPATH when there is no DT_RUNPATH, then
 * DT_RUNPATH, then the default directories: the image has no ld.so.cache),
 * recursively. The tree doubles as the set of files already visited. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

/* Debian's loader searches these (multiarch first) without a cache. */
static const char *const default_dirs[] = {
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"};
/* PID 1's PATH (guest/linux/tinit sets the same). */
static const char *const path_dirs[] = {"usr/local/sbin", "usr/local/bin", "usr/sbin",
					"usr/bin",	  "sbin",	   "bin"};

/* Map host file `host` and parse it as an ELF; 1 if it is not one. */
static int parse_file(const char *host, struct image_elf *e, char *err, size_t errlen)
{
	int fd = open(host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < SELFMAG) {
		close(fd);
		return 1;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	int r = 1;
	if (image_is_elf(m, (size_t)st.st_size))
		r = image_elf_parse(m, (size_t)st.st_size, e, err, errlen);
	munmap(m, (size_t)st.st_size);
	return r;
}

/* Is root/rel a regular x86-64 ELF? (a candidate library) */
static bool is_native_elf(const char *root, const char *rel)
{
	struct image_resolved r;
	if (path_resolve(root, rel, &r))
		return false;
	path_resolved_free(&r);
	char host[PATH_MAX * 2], err[64];
	snprintf(host, sizeof(host), "%s/%s", root, r.path);
	struct image_elf e;
	int x = parse_file(host, &e, err, sizeof(err));
	if (x == 0)
		image_elf_free(&e);
	return x == 0;
}

/* Look for library `name` in the ':'-separated list dirs ($ORIGIN is the
 * directory of the object that needs it); found is its path. */
static bool search_list(const char *root, const char *dirs, const char *origin, const char *name,
			char *found, size_t len)
{
	char *copy = strdup(dirs), *save = NULL;
	bool ok = false;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !ok;
	     d = strtok_r(NULL, ":", &save)) {
		char dir[PATH_MAX];
		if (!strncmp(d, "$ORIGIN", 7))
			snprintf(dir, sizeof(dir), "%s%s", origin, d + 7);
		else if (!strncmp(d, "${ORIGIN}", 9))
			snprintf(dir, sizeof(dir), "%s%s", origin, d + 9);
		else
			snprintf(dir, sizeof(dir), "%s", d);
		if (snprintf(found, len, "%s/%s", dir, name) < (int)len)
			ok = is_native_elf(root, found);
	}
	free(copy);
	return ok;
}

static int find_library(const char *root, const struct image_elf *e, const char *origin,
			const char *name, char *found, size_t len)
{
	if (!e->runpath && e->rpath && search_list(root, e->rpath, origin, name, found, len))
		return 0;
	if (e->runpath && search_list(root, e->runpath, origin, name, found, len))
		return 0;
	for (size_t i = 0; i < sizeof(default_dirs) / sizeof(default_dirs[0]); i++) {
		snprintf(found, len, "/%s/%s", default_dirs[i], name);
		if (is_native_elf(root, found))
			return 0;
	}
	return -ENOENT;
}

int closure_add(struct image_tree *t, const char *root, const char *path, const char *reason,
		bool required, char *err, size_t errlen)
{
	struct image_resolved r;
	int x = path_resolve(root, path, &r);
	if (x) {
		snprintf(err, errlen, "%s: %s", path, strerror(-x));
		return x;
	}
	char why[512];
	for (int i = 0; i < r.nr_hops && !x; i++) {
		snprintf(why, sizeof(why), "symlink on the way to %s", path);
		x = tree_add_symlink(t, r.hops[i].path, r.hops[i].target, why);
		if (x == -EEXIST)
			x = 0; /* a directory there already: the image has it resolved */
	}
	path_resolved_free(&r);
	if (x) {
		snprintf(err, errlen, "%s: %s", path, strerror(-x));
		return x;
	}
	if (!r.path[0] || tree_find(t, r.path))
		return 0; /* the root, or already in (and its closure with it) */
	char host[PATH_MAX * 2];
	snprintf(host, sizeof(host), "%s/%s", root, r.path);
	struct stat st;
	if (lstat(host, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(st.st_mode))
		return tree_add_dir(t, r.path, st.st_mode, reason);
	if (!S_ISREG(st.st_mode)) {
		if (required) {
			snprintf(err, errlen, "%s: not a regular file", path);
			return -EINVAL;
		}
		return 0; /* sockets, fifos, devices in a rootfs: not copied */
	}
	if ((x = tree_add_file(t, r.path, host, st.st_mode, reason))) {
		snprintf(err, errlen, "/%s: %s", r.path, strerror(-x));
		return x;
	}
	return closure_deps(t, root, host, r.path, required, err, errlen);
}

int closure_deps(struct image_tree *t, const char *root, const char *host, const char *path,
		 bool required, char *err, size_t errlen)
{
	struct image_elf e;
	char perr[256] = "", why[512];
	int x = parse_file(host, &e, perr, sizeof(perr));
	if (x) {
		if (required) {
			snprintf(err, errlen, "%s: %s", host, x == 1 ? "not an ELF file" : perr);
			return x == 1 ? -ENOEXEC : x;
		}
		/* Data, scripts, foreign binaries (firmware): carried as they are. */
		if (x < 0 && x != -EXDEV && x != -ENOEXEC) {
			snprintf(err, errlen, "%s: %s", host, perr);
			return x;
		}
		return 0;
	}
	char origin[PATH_MAX];
	snprintf(origin, sizeof(origin), "/%s", path);
	*strrchr(origin, '/') = '\0';
	if (e.interp[0]) {
		snprintf(why, sizeof(why), "dynamic loader of /%s", path);
		x = closure_add(t, root, e.interp, why, true, err, errlen);
		if (x == -ENOENT)
			snprintf(err, errlen, "dynamic loader %s of /%s: not found", e.interp,
				 path);
	}
	for (int i = 0; i < e.nr_needed && !x; i++) {
		char lib[PATH_MAX];
		if (strchr(e.needed[i], '/'))
			snprintf(lib, sizeof(lib), "%s", e.needed[i]);
		else if (find_library(root, &e, origin, e.needed[i], lib, sizeof(lib))) {
			snprintf(err, errlen, "library %s needed by /%s: not found", e.needed[i],
				 path);
			x = -ENOENT;
			break;
		}
		snprintf(why, sizeof(why), "library %s needed by /%s", e.needed[i], path);
		x = closure_add(t, root, lib, why, true, err, errlen);
	}
	image_elf_free(&e);
	return x;
}

int closure_find_command(const char *root, const char *cmd, char *found, size_t len)
{
	char rel[PATH_MAX];
	bool search = !strchr(cmd, '/');
	size_t n = search ? sizeof(path_dirs) / sizeof(path_dirs[0]) : 1;
	for (size_t i = 0; i < n; i++) {
		if (search)
			snprintf(rel, sizeof(rel), "/%s/%s", path_dirs[i], cmd);
		else
			snprintf(rel, sizeof(rel), "%s", cmd);
		struct image_resolved r;
		if (path_resolve(root, rel, &r))
			continue;
		path_resolved_free(&r);
		char host[PATH_MAX * 2];
		struct stat st;
		snprintf(host, sizeof(host), "%s/%s", root, r.path);
		if (!lstat(host, &st) && S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
			snprintf(found, len, "%s", rel);
			return 0;
		}
	}
	return -ENOENT;
}
