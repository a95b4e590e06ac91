/* Reading an image back: its format from the first bytes, its manifest
 * (from the cpio after `lz4 -dc`, or from ext4 with `debugfs -R cat`), and
 * what a VMM needs to boot it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_FRAME_MAGIC	 0x184d2204u
#define EXT4_MAGIC_OFF	 1080
#define EXT4_MAGIC	 0xef53u

static int detect(const char *path, enum image_format *f, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "image '%s': %s", path, strerror(errno));
		return -errno;
	}
	uint8_t h[EXT4_MAGIC_OFF + 2] = {0};
	ssize_t n = pread(fd, h, sizeof(h), 0);
	close(fd);
	uint32_t m = n >= 4 ? (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
				      (uint32_t)h[3] << 24
			    : 0;
	if (m == LZ4_LEGACY_MAGIC || m == LZ4_FRAME_MAGIC) {
		*f = IMAGE_INITRAMFS;
		return 0;
	}
	if (n == (ssize_t)sizeof(h) &&
	    (h[EXT4_MAGIC_OFF] | h[EXT4_MAGIC_OFF + 1] << 8) == (int)EXT4_MAGIC) {
		*f = IMAGE_EXT4;
		return 0;
	}
	snprintf(err, errlen, "image '%s': neither an LZ4 initramfs nor an ext4 file system", path);
	return -EINVAL;
}

int image_boot_info(const char *path, struct image_boot *boot, char *err, size_t errlen)
{
	memset(boot, 0, sizeof(*boot));
	int r = detect(path, &boot->format, err, errlen);
	if (r)
		return r;
	/* An initramfs runs /init by itself; an ext4 root needs naming. */
	if (boot->format == IMAGE_EXT4)
		snprintf(boot->cmdline, sizeof(boot->cmdline),
			 "root=/dev/vda rw rootfstype=ext4 init=/init");
	return 0;
}

static int manifest_initramfs(const char *path, char **text, char *err, size_t errlen)
{
	int fd = memfd_create("wisp-image-cpio", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -errno;
	}
	char *argv[] = {"lz4", "-d", "-c", "-q", (char *)path, NULL};
	int r = tool_run(argv, -1, fd, err, errlen);
	struct stat st;
	if (!r && fstat(fd, &st))
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	uint8_t *m = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
				: MAP_FAILED;
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "image '%s': empty archive", path);
		return -EINVAL;
	}
	const uint8_t *data;
	size_t size;
	r = cpio_find(m, (size_t)st.st_size, IMAGE_MANIFEST_PATH, &data, &size);
	if (!r) {
		*text = strndup((const char *)data, size);
		if (!*text)
			r = -ENOMEM;
	} else {
		snprintf(err, errlen, "image '%s': %s", path,
			 r == -ENOENT ? "no manifest (not built by wisp image)"
				      : "the archive is not a newc cpio");
	}
	munmap(m, (size_t)st.st_size);
	return r;
}

int image_inspect(const char *path, char **text, char *err, size_t errlen)
{
	enum image_format f;
	*text = NULL;
	int r = detect(path, &f, err, errlen);
	if (r)
		return r;
	if (f == IMAGE_INITRAMFS)
		return manifest_initramfs(path, text, err, errlen);
	char *argv[] = {"debugfs", "-R", "cat /" IMAGE_MANIFEST_PATH, (char *)path, NULL};
	r = tool_output(argv, text, err, errlen);
	if (!r && !**text) {
		free(*text);
		*text = NULL;
		snprintf(err, errlen, "image '%s': no manifest (not built by wisp image)", path);
		r = -ENOENT;
	}
	return r;
}

int image_exit_line(const char *line)
{
	const char *p = strstr(line, IMAGE_EXIT_PREFIX);
	if (!p)
		return -1;
	p += strlen(IMAGE_EXIT_PREFIX);
	int v = 0, digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
		v = v * 10 + (*p - '0');
	if (!digits || v > 255 || (*p && *p != '\r' && *p != '\n' && *p != ' '))
		return -1;
	return v;
}
