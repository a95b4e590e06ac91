/* `wisp image`: Tinyx-style images, one application and what it needs.
 * The public side, for the CLI and for whoever boots an image: build one,
 * list what is inside and why, and say how to boot it. Library code: every
 * function returns 0 or -errno and writes a one-line reason into err. */
#ifndef WISP_IMAGE_H
#define WISP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#define IMAGE_MAX_ENV 64

enum image_format {
	IMAGE_INITRAMFS, /* newc cpio, LZ4 (legacy frame, what the kernel unpacks) */
	IMAGE_EXT4,	 /* an ext4 file system, root=/dev/vda */
};

/* Where the application comes from: exactly one of the three. */
struct image_spec {
	const char *package;		/* a Debian package: apt-get download + dpkg-deb -x */
	const char *binary;		/* a local ELF executable and the host's libraries */
	const char *rootfs;		/* an existing root file system directory */
	const char *cmd;		/* what PID 1 runs, split like a shell word list */
	const char *env[IMAGE_MAX_ENV]; /* K=V */
	int nr_env;
	const char *workdir; /* default / */
	const char *user;    /* NAME, UID or UID:GID; default root */
	const char *out;
	enum image_format format;
	/* Long steps report here (download, extract, closure, pack); may be NULL. */
	void (*progress)(void *ctx, const char *step, const char *what);
	void *progress_ctx;
};

/* How to boot an image with the Wisp guest kernel. */
struct image_boot {
	enum image_format format;
	char cmdline[256]; /* to append to the kernel command line ("" for initramfs) */
};

/* Build spec->out (written to a temporary file, renamed at the end). */
int image_build(const struct image_spec *spec, char *err, size_t errlen);
/* Remove the temporary output of a build in progress; async-signal-safe,
 * for the CLI's SIGINT/SIGTERM handler (the staging directory stays). */
void image_build_interrupted(void);
/* The manifest of an image (one "TYPE SIZE PATH<TAB>REASON" line per entry),
 * malloc'd into *text. */
int image_inspect(const char *path, char **text, char *err, size_t errlen);
/* Tell an image's format from its first bytes and what to boot it with. */
int image_boot_info(const char *path, struct image_boot *boot, char *err, size_t errlen);
/* The guest init's last console line, "wisp-init: exit N": N if line is one,
 * else -1. A Linux guest's run reports N as its exit status. */
int image_exit_line(const char *line);

#endif
