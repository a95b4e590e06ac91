/* Which program a bundle runs, found inside its rootfs as if the rootfs
 * were /, and whether it is a Wisp unikernel. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/x86/x86.h"
#include "oci/oci.h"

/* openat2 with RESOLVE_IN_ROOT: "..", and absolute links, stay inside dirfd. */
static int open_in_root(int dirfd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Open one candidate; a regular, executable-looking file, else -errno. */
static int open_candidate(int rootfd, const char *path)
{
	struct stat sb;
	int fd = open_in_root(rootfd, path);
	if (fd < 0 && errno == EXDEV) {
		/* Another file system under the rootfs (a bind mount): allowed. */
		struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EACCES;
	}
	return fd;
}

/* Open process.args[0] in the rootfs. */
int oci_image_open(const struct oci_spec *spec, char *err, size_t errlen)
{
	const char *prog = spec->args[0],
		   *pathvar = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	int rootfd, fd = -ENOENT;

	rootfd = open(spec->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		int e = errno;
		snprintf(err, errlen, "rootfs '%.200s': %s", spec->rootfs, strerror(e));
		return -e;
	}
	if (strchr(prog, '/')) {
		fd = open_candidate(rootfd, prog);
	} else {
		for (char **e = spec->env; e && *e; e++)
			if (!strncmp(*e, "PATH=", 5))
				pathvar = *e + 5;
		char *copy = strdup(pathvar), *save = NULL;
		if (!copy) {
			close(rootfd);
			return -ENOMEM;
		}
		for (char *dir = strtok_r(copy, ":", &save); dir;
		     dir = strtok_r(NULL, ":", &save)) {
			char cand[PATH_MAX];
			if (snprintf(cand, sizeof(cand), "%s/%s", dir, prog) >= (int)sizeof(cand))
				continue;
			int r = open_candidate(rootfd, cand);
			if (r >= 0 || r != -ENOENT) {
				fd = r;
				if (r >= 0)
					break;
			}
		}
		free(copy);
	}
	close(rootfd);
	if (fd < 0) {
		/* podman maps "no such file or directory" to 127, "permission denied" to 126. */
		snprintf(err, errlen, "process.args[0] '%.200s' in the rootfs: %s", prog,
			 fd == -ENOENT	 ? "no such file or directory"
			 : fd == -EACCES ? "permission denied"
					 : strerror(-fd));
		return fd;
	}
	return fd;
}

/* Is fd a Wisp unikernel ELF? */
int oci_image_is_unikernel(int fd, char *err, size_t errlen)
{
	struct stat sb;
	struct elf_image img;
	char why[256];
	uint8_t magic[4];
	void *map;
	int r;

	if (fstat(fd, &sb))
		return -errno;
	if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, "\177ELF", 4))
		return 0;
	if ((uint64_t)sb.st_size > OCI_MAX_IMAGE)
		return 0;
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		snprintf(err, errlen, "reading the program: %s", strerror(-r));
		return r;
	}
	r = elf_parse(map, (size_t)sb.st_size, &img, why, sizeof(why));
	/* An ordinary (Linux) ELF fails the parse or has no note: not ours.
	 * One that carries the Wisp note header (type, then "Wisp") but fails
	 * the VMM's checks is a broken unikernel, and says so. */
	static const uint8_t note_tail[] = {0x01, 0x00, 0x49, 0x57, 'W', 'i', 's', 'p', 0};
	bool marked = memmem(map, (size_t)sb.st_size, note_tail, sizeof(note_tail)) != NULL;
	munmap(map, (size_t)sb.st_size);
	if (r == 0 && img.has_wisp_note)
		return 1;
	if (marked && r != 0) {
		snprintf(err, errlen, "not a valid Wisp unikernel: %s", why);
		return -ENOEXEC;
	}
	return 0;
}
