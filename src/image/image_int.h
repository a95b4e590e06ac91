/* The inside of `wisp image` (src/image/): the tree an image is made of, ELF
 * dynamic sections, the dependency closure, the cpio writer and the Debian
 * tools. Every function returns 0 or -errno with a one-line reason. */
#ifndef WISP_IMAGE_INT_H
#define WISP_IMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image/image.h"
#include "util/util.h"

#define IMAGE_ERRLEN	  512
#define IMAGE_MAX_NEEDED  128
#define IMAGE_MAX_SYMLINK 40 /* like the kernel's MAXSYMLINKS */

/* Where the guest init reads its orders and where the manifest lives. */
#define IMAGE_CONFIG_PATH   "etc/wisp-image/config"
#define IMAGE_MANIFEST_PATH "etc/wisp-image/manifest"
#define IMAGE_EXIT_PREFIX   "wisp-init: exit "

/* --- elf.c: what the dynamic loader will need, read from the file ------- */
struct image_elf {
	bool dynamic;	  /* has PT_DYNAMIC */
	bool executable;  /* ET_EXEC, or ET_DYN with an interpreter */
	char interp[256]; /* PT_INTERP, "" if none */
	int nr_needed;
	char *needed[IMAGE_MAX_NEEDED]; /* DT_NEEDED names (malloc'd) */
	char *runpath;			/* DT_RUNPATH or NULL */
	char *rpath;			/* DT_RPATH or NULL */
};
/* Is buf an ELF file at all (magic only)? */
bool image_is_elf(const uint8_t *buf, size_t len);
/* Parse an x86-64 ELF held in buf; -ENOEXEC (not ELF, truncated, bad
 * table) or -EXDEV (another class or machine) with a reason. */
int image_elf_parse(const uint8_t *buf, size_t len, struct image_elf *e, char *err, size_t errlen);
/* Free what image_elf_parse allocated. */
void image_elf_free(struct image_elf *e);

/* --- tree.c: the image's entries, sorted on output --------------------- */
enum image_entry_type { ENTRY_DIR, ENTRY_FILE, ENTRY_SYMLINK, ENTRY_CHR };

struct image_entry {
	struct hmap_node node;
	char *path; /* inside the image, no leading '/' */
	enum image_entry_type type;
	mode_t mode;   /* permission bits */
	char *src;     /* ENTRY_FILE: host file with the bytes, or NULL */
	uint8_t *data; /* ENTRY_FILE: inline bytes (when src is NULL) */
	size_t size;   /* ENTRY_FILE: length of data */
	char *target;  /* ENTRY_SYMLINK */
	unsigned rdev_major, rdev_minor;
	char *reason; /* why it is in the image */
};

struct image_tree {
	struct hmap map;
	struct image_entry **v;
	size_t n, cap;
};

/* An empty tree. */
int tree_init(struct image_tree *t);
/* Free the tree and its entries. */
void tree_free(struct image_tree *t);
/* The entry at path, or NULL. */
struct image_entry *tree_find(const struct image_tree *t, const char *path);
/* Add a directory and any missing parents (no-op if present). */
int tree_add_dir(struct image_tree *t, const char *path, mode_t mode, const char *reason);
/* Add a file with the bytes of host file src (parents added too). */
int tree_add_file(struct image_tree *t, const char *path, const char *src, mode_t mode,
		  const char *reason);
/* Add a file with inline bytes (copied). */
int tree_add_data(struct image_tree *t, const char *path, const void *data, size_t size,
		  mode_t mode, const char *reason);
/* Add a symbolic link. */
int tree_add_symlink(struct image_tree *t, const char *path, const char *target,
		     const char *reason);
/* Add a character device node. */
int tree_add_chr(struct image_tree *t, const char *path, unsigned major, unsigned minor,
		 mode_t mode, const char *reason);
/* Entries sorted by path (parents before children). */
void tree_sort(struct image_tree *t);
/* The manifest text: one "TYPE SIZE /PATH<TAB>REASON" line per entry. */
int tree_manifest(struct image_tree *t, char **text);

/* --- path.c: paths inside a root directory, never outside it ---------- */
/* One symlink met on the way to a path, to put in the image too. */
struct image_hop {
	char path[4096];
	char target[4096];
};
struct image_resolved {
	char path[4096]; /* the path with no symlink in it, inside root, no leading '/' */
	int nr_hops;
	struct image_hop *hops; /* malloc'd, nr_hops of them */
};
/* Resolve path (absolute, inside the root dir `root`) following symlinks
 * as the guest would, clamped to root: "..", absolute targets and loops
 * never leave it. -ENOENT if some component does not exist, -ELOOP. */
int path_resolve(const char *root, const char *path, struct image_resolved *r);
/* Free r->hops. */
void path_resolved_free(struct image_resolved *r);
/* Normalise a path: no leading '/', no "." or empty components; ".." is
 * refused (-EINVAL). */
int path_clean(const char *in, char *out, size_t len);

/* --- closure.c: the ELF closure, Tinyx-style -------------------------- */
/* Add host file root/path (following symlinks inside root) to the tree and,
 * if it is an ELF, its interpreter and every library it needs, recursively.
 * required: a non-ELF or foreign ELF is an error (the entry binary). */
int closure_add(struct image_tree *t, const char *root, const char *path, const char *reason,
		bool required, char *err, size_t errlen);
/* The ELF closure of host file `host`, which sits at `path` in the image:
 * its loader and libraries from root. required: a non-ELF is an error. */
int closure_deps(struct image_tree *t, const char *root, const char *host, const char *path,
		 bool required, char *err, size_t errlen);
/* Find a command the way PID 1 will (absolute, or in the image's PATH),
 * in the directory root; *found is its path inside root. */
int closure_find_command(const char *root, const char *cmd, char *found, size_t len);

/* --- cpio.c: newc archives --------------------------------------------- */
/* Write the (sorted) tree as a newc cpio to fd: mtime 0, uid/gid 0, inode
 * numbers in order, so the same tree gives the same bytes. */
int cpio_write(struct image_tree *t, int fd, char *err, size_t errlen);
/* Find file `name` in a newc archive in memory; *data points into buf. */
int cpio_find(const uint8_t *buf, size_t len, const char *name, const uint8_t **data, size_t *size);

/* --- pack.c: the output formats ---------------------------------------- */
/* The tree as newc cpio compressed by lz4 -l, written to fd out. */
int image_pack_initramfs(struct image_tree *t, const char *staging, int out, char *err,
			 size_t errlen);
/* The tree as an ext4 file system (mke2fs -d), written to fd out. */
int image_pack_ext4(struct image_tree *t, const char *staging, int out, char *err, size_t errlen);

/* --- tools.c: running Debian's tools (apt-get, dpkg-deb, lz4, mke2fs) -- */
/* Run argv (PATH searched) with stdin from in_fd and stdout to out_fd (-1:
 * /dev/null); its last stderr line goes to err on failure. -EIO if it
 * fails, -ENOENT if it cannot be run. */
int tool_run(char *const argv[], int in_fd, int out_fd, char *err, size_t errlen);
/* Same, in directory cwd. */
int tool_run_in(const char *cwd, char *const argv[], int in_fd, int out_fd, char *err,
		size_t errlen);
/* Same, with its stdout collected (malloc'd, NUL-terminated). */
int tool_output(char *const argv[], char **out, char *err, size_t errlen);
/* The cache directory (~/.cache/wisp/image, or $WISP_CACHE/image), created. */
int tool_cache_dir(char *buf, size_t len);

/* --- deb.c: a Debian package and the libraries it depends on --------- */
/* One progress line of a long step (download, extract, closure, pack) to
 * the spec's progress callback, if it has one. */
void image_progress(const struct image_spec *s, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct deb_set {
	char *root;	  /* every package extracted here */
	char **own;	  /* the package and its source's siblings: dirs */
	char **own_names; /* their names */
	int nr_own;
	char *conffiles; /* "\n/etc/a\n/etc/b\n" */
};
/* Download (cached) and extract package `name` and its library closure into
 * staging; report progress. */
int deb_fetch(const struct image_spec *spec, const char *staging, struct deb_set *d, char *err,
	      size_t errlen);
/* Free the set (not the files). */
void deb_set_free(struct deb_set *d);

#endif
