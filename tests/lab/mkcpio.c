/* mkcpio: write a "newc" cpio archive (the initramfs format, see the
 * kernel's Documentation/driver-api/early-userspace/buffer-format.rst) from
 * a list of entries on stdin, one per line:
 *
 *   dir   PATH MODE UID GID
 *   file  PATH SOURCE MODE UID GID
 *   slink PATH TARGET MODE UID GID
 *   nod   PATH MODE UID GID c|b MAJOR MINOR
 *
 * MODE is octal. Device nodes are written without being created, so no root
 * is needed, and every mtime is 0, so the same list gives the same bytes.
 * The lab's L1 initramfs is built with it; it needs no kernel tree.
 * Usage: mkcpio <LIST >OUT.cpio */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static unsigned long ino = 721;

static void die(int line, const char *what)
{
	fprintf(stderr, "mkcpio: line %d: %s\n", line, what);
	exit(1);
}

static void pad4(unsigned long n)
{
	static const char zeros[4];
	fwrite(zeros, 1, (4 - n % 4) % 4, stdout);
}

/* One header and its name; the caller writes the data (size bytes). */
static void header(const char *name, unsigned long mode, unsigned long uid, unsigned long gid,
		   unsigned long size, unsigned long rmaj, unsigned long rmin)
{
	unsigned long namesize = strlen(name) + 1;
	printf("070701%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX%08lX", ino++,
	       mode, uid, gid, 1ul, 0ul, size, 0ul, 0ul, rmaj, rmin, namesize, 0ul);
	fwrite(name, 1, namesize, stdout);
	pad4(110 + namesize);
}

/* Archive names have no leading slash. */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static void add_file(int line, const char *path, const char *src, unsigned long mode,
		     unsigned long uid, unsigned long gid)
{
	FILE *f = fopen(src, "rb");
	if (!f) {
		fprintf(stderr, "mkcpio: line %d: %s: %s\n", line, src, strerror(errno));
		exit(1);
	}
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
		die(line, "source is not a regular file");
	header(rel(path), S_IFREG | mode, uid, gid, (unsigned long)st.st_size, 0, 0);
	char buf[65536];
	size_t n, total = 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		fwrite(buf, 1, n, stdout);
		total += n;
	}
	fclose(f);
	if (total != (size_t)st.st_size)
		die(line, "source changed size while being read");
	pad4(total);
}

int main(void)
{
	char buf[4096], type[16], path[1024], arg[1024], kind[4];
	unsigned long mode, uid, gid, maj, min;
	int line = 0;
	while (fgets(buf, sizeof(buf), stdin)) {
		line++;
		if (buf[0] == '#' || buf[0] == '\n')
			continue;
		if (sscanf(buf, "%15s", type) != 1)
			die(line, "no entry type");
		if (!strcmp(type, "dir")) {
			if (sscanf(buf, "%*s %1023s %lo %lu %lu", path, &mode, &uid, &gid) != 4)
				die(line, "want: dir PATH MODE UID GID");
			header(rel(path), S_IFDIR | mode, uid, gid, 0, 0, 0);
		} else if (!strcmp(type, "file")) {
			if (sscanf(buf, "%*s %1023s %1023s %lo %lu %lu", path, arg, &mode, &uid,
				   &gid) != 5)
				die(line, "want: file PATH SOURCE MODE UID GID");
			add_file(line, path, arg, mode, uid, gid);
		} else if (!strcmp(type, "slink")) {
			if (sscanf(buf, "%*s %1023s %1023s %lo %lu %lu", path, arg, &mode, &uid,
				   &gid) != 5)
				die(line, "want: slink PATH TARGET MODE UID GID");
			unsigned long len = strlen(arg);
			header(rel(path), S_IFLNK | mode, uid, gid, len, 0, 0);
			fwrite(arg, 1, len, stdout);
			pad4(len);
		} else if (!strcmp(type, "nod")) {
			if (sscanf(buf, "%*s %1023s %lo %lu %lu %3s %lu %lu", path, &mode, &uid,
				   &gid, kind, &maj, &min) != 7 ||
			    (strcmp(kind, "c") && strcmp(kind, "b")))
				die(line, "want: nod PATH MODE UID GID c|b MAJOR MINOR");
			header(rel(path), (kind[0] == 'c' ? S_IFCHR : S_IFBLK) | mode, uid, gid, 0,
			       maj, min);
		} else {
			die(line, "unknown entry type (dir, file, slink or nod)");
		}
	}
	header("TRAILER!!!", 0, 0, 0, 0, 0, 0);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "mkcpio: write error: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
