/* Small helpers shared by every layer. */
#ifndef WISP_UTIL_H
#define WISP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read a whole regular file of at most max bytes into a malloc'd buffer.
 * On error returns -errno (-EISDIR, -EFBIG, -ENODATA for an empty file). */
int util_read_file(const char *path, size_t max, uint8_t **buf, size_t *size);
/* The runtime directory: $WISP_RUNTIME_DIR, else /run/wisp for root, else
 * $XDG_RUNTIME_DIR/wisp, else /tmp/wisp-UID. */
void util_runtime_dir(char *buf, size_t len);
/* Monotonic clock in nanoseconds. */
uint64_t util_now_ns(void);
/* With WISP_TRACE=1 in the environment, print to stderr the microseconds
 * since the first mark and since the previous one; else nothing. */
void util_trace(const char *what);
/* Human-readable error for util_read_file's return values. */
const char *util_file_error(int err);

/* --- fdpass.c: a message and at most one fd on a unix socket --------------- */
#include <sys/types.h>
/* Send len bytes of msg in one message, with fd beside it if fd >= 0:
 * 0, -errno, or -EMSGSIZE if it went out short. */
int util_send_fd(int sock, const void *msg, size_t len, int fd);
/* Receive one message of at most cap bytes (recvmsg flags added to
 * MSG_CMSG_CLOEXEC); keeps the first fd sent with it in *fd (-1 if none;
 * fd may be NULL: every fd is closed), closes any others. Returns its
 * length, -errno, or -EMSGSIZE if it was longer than cap. */
ssize_t util_recv_fd(int sock, void *buf, size_t cap, int *fd, int flags);

/* --- ring.c: console ring ---------------------------------------------------
 * A byte ring in a shared file: the VMM writes guest console output into it
 * with plain stores (no system call per write), wispd and `wisp console`
 * read it by mapping the same file. The header counts every byte ever
 * written; a reader keeps its own position and learns how much it missed. */
#define RING_MAGIC    0x474e495250534957ull /* "WISPRING" */
#define RING_HDR_SIZE 64u

/* The file's first 64 bytes; data follows. */
struct ring_hdr {
	uint64_t magic;
	uint64_t size; /* bytes of data */
	uint64_t head; /* bytes ever written; position of the next byte */
	uint64_t reserved[5];
};

/* A mapped ring, for writing or for reading. */
struct ring {
	struct ring_hdr *hdr;
	uint8_t *data;
	uint64_t size;	/* bytes of data, from the file size (never the header) */
	size_t map_len; /* bytes mapped */
};

/* Create (or truncate) file `name` in dirfd with `size` bytes of data and
 * map it for writing. */
int ring_create(int dirfd, const char *name, uint64_t size, struct ring *r);
/* Map an existing ring file read-only; -EINVAL if it is not a ring. */
int ring_open(int dirfd, const char *name, struct ring *r);
/* Append len bytes; when len exceeds the ring, only the last bytes stay. */
void ring_write(struct ring *r, const void *buf, size_t len);
/* Copy up to max bytes from position *pos into buf and advance *pos.
 * Bytes already overwritten are skipped: *pos jumps forward and *lost (if
 * not NULL) says how many. Returns bytes copied. */
size_t ring_read(const struct ring *r, uint64_t *pos, void *buf, size_t max, uint64_t *lost);
/* Position of the next byte to be written. */
uint64_t ring_head(const struct ring *r);
/* Unmap. */
void ring_close(struct ring *r);

/* --- hmap.c: hash map ---------------------------------------------------------
 * An intrusive chained hash map: the caller embeds a struct hmap_node in its
 * object (one per map it belongs to), computes the hash, and compares keys
 * itself while walking the nodes of one hash. Buckets double when the map
 * is full, so insert, lookup and remove cost O(1) at any size. */
struct hmap_node {
	struct hmap_node *next;
	uint64_t hash;
};

struct hmap {
	struct hmap_node **buckets;
	size_t mask; /* number of buckets - 1 (a power of two) */
	size_t count;
};

/* An empty map with room for about `hint` entries before it grows. */
int hmap_init(struct hmap *m, size_t hint);
/* Free the buckets (not the entries). */
void hmap_destroy(struct hmap *m);
/* Add node with `hash` (if the buckets cannot grow, chains get longer). */
void hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash);
/* Remove node (which must be in m). */
void hmap_remove(struct hmap *m, struct hmap_node *node);
/* First node with `hash`, or NULL; hmap_next_same() gives the next one. */
struct hmap_node *hmap_find(const struct hmap *m, uint64_t hash);
struct hmap_node *hmap_next_same(const struct hmap_node *node);
/* Every node, in no particular order: start with *bucket = 0 and node NULL.
 * Take the next node before removing the current one; do not insert. */
struct hmap_node *hmap_next(const struct hmap *m, size_t *bucket, struct hmap_node *node);
/* Hashes for keys (FNV-1a over the bytes, then mixed). */
uint64_t hmap_hash_str(const char *s);
uint64_t hmap_hash_u64(uint64_t v);

/* --- wbuf.c: a growable byte buffer ----------------------------------------
 * Snapshot state is built in memory before it is written, so that its size
 * and checksum are known first. An allocation failure is remembered and
 * reported once at the end (wbuf_error), so writers need not check each put. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err; /* -ENOMEM once an allocation failed */
};

/* Append n bytes. */
void wbuf_put(struct wbuf *b, const void *data, size_t n);
/* Append n zero bytes and return where they are (NULL after a failure);
 * the pointer is valid until the next put. */
void *wbuf_reserve(struct wbuf *b, size_t n);
/* Pad with zeros to a multiple of align (a power of two). */
void wbuf_align(struct wbuf *b, size_t align);
/* 0, or -ENOMEM if any put failed. */
int wbuf_error(const struct wbuf *b);
/* Free the buffer and empty it. */
void wbuf_free(struct wbuf *b);

/* --- options.c: option values shared by the verbs, wispd and the config ----
 * Strict: trailing garbage, signs, empty strings and overflow are errors. */
/* Parse a size: a number with an optional K, M or G suffix (powers of 1024);
 * a bare number means MiB. */
int opt_parse_size(const char *s, uint64_t *out);
/* Parse an unsigned integer in [min, max]. */
int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parse a duration: a number with an optional ms, s or m suffix; a bare
 * number means seconds. Result in milliseconds, > 0. */
int opt_parse_duration_ms(const char *s, uint64_t *out);
/* Join argv[0..argc) with spaces, quoting words that hold spaces; NULL if
 * out of memory. */
char *opt_join_args(int argc, char **argv);
/* Is s a VM id: 12 lower-case hex digits? */
bool util_is_vm_id(const char *s);

/* --- log.c: the structured logger -------------------------------------------
 * wispd, wisp-vmm and `wisp run` write their messages through it: plain
 * text ("COMPONENT: [VM ID: ]message") by default, or one JSON object per
 * line (time, level, component, pid, vm, msg) with --log-format json. */
enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Name the program in every line ("wispd") and choose the format; call
 * once, before any thread logs. component must stay valid. */
void log_setup(const char *component, enum log_format format);
/* The vm field of messages that name no VM (wisp-vmm's own VM); NULL: none. */
void log_set_vm(const char *vm);
/* Write lines to fd (2 by default); -1: format each line, write none (fuzz targets). */
void log_set_fd(int fd);
/* Parse "text" or "json"; -EINVAL for anything else. */
int log_parse_format(const char *s, enum log_format *out);
/* The format chosen by log_setup (to pass on to child processes). */
enum log_format log_get_format(void);
/* "text" or "json". */
const char *log_format_name(enum log_format format);
/* Write one message about VM vm (NULL: the default, if any) as one line. */
void log_msg(enum log_level level, const char *vm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with a va_list. */
void log_vmsg(enum log_level level, const char *vm, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
#define log_info(vm, ...)  log_msg(LOG_LEVEL_INFO, vm, __VA_ARGS__)
#define log_warn(vm, ...)  log_msg(LOG_LEVEL_WARN, vm, __VA_ARGS__)
#define log_error(vm, ...) log_msg(LOG_LEVEL_ERROR, vm, __VA_ARGS__)

/* --- progress.c: progress of long work, on stderr ----------------------------
 * On a terminal a line redrawn in place (bytes, rate, time left); elsewhere
 * one summary line at the end ("WHAT: 32.0 MiB in 0.21 s (152.4 MiB/s)");
 * quiet: nothing. */
struct progress {
	char what[160]; /* "wisp: migrate c1" */
	uint64_t total; /* bytes expected; 0: unknown (no ETA) */
	uint64_t done;
	uint64_t start_ns, drawn_ns;
	bool tty, quiet, drawn;
};

/* Start reporting `what`, of total bytes (0 if unknown). */
void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet);
/* Learn the total once it is known. */
void progress_set_total(struct progress *p, uint64_t total);
/* done bytes so far (redraws at most 10 times a second). */
void progress_update(struct progress *p, uint64_t done);
/* n more bytes done. */
void progress_add(struct progress *p, uint64_t n);
/* On a terminal, show text as the live line: a step of work that counts no
 * bytes ("download: 12 packages"), with the time so far. */
void progress_step(struct progress *p, const char *text);
/* Erase the live line (to print something else; the next update redraws). */
void progress_clear(struct progress *p);
/* The work ended: end the live line, or print the summary (only if ok). */
void progress_end(struct progress *p, bool ok);

/* --- ratelimit.c: token buckets (Firecracker's rate limiter) --------------
 * A bucket holds up to `burst` tokens and gains `rate` tokens per second.
 * Taking n tokens needs min(n, burst) of them: a request larger than the
 * bucket goes through when it is full, and the bucket then owes the rest
 * (its level goes below zero), so the long-run rate is `rate` exactly.
 * The caller passes the clock (ns), so tests need no sleeping. */
struct tbucket {
	uint64_t rate;	/* tokens per second; 0: unlimited */
	uint64_t burst; /* capacity in tokens */
	int64_t level;	/* tokens now; negative: owed */
	uint64_t frac;	/* refill remainder, in token-nanoseconds (< 1e9) */
	uint64_t last;	/* clock of the last refill, ns */
};

/* A full bucket of `burst` tokens (0: `rate`, one second's worth) gaining
 * `rate` per second (0: unlimited). */
void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t burst, uint64_t now);
/* Nanoseconds until n tokens can be taken (0: now). */
uint64_t tbucket_wait(struct tbucket *b, uint64_t n, uint64_t now);
/* Take n tokens (after tbucket_wait said 0, or to charge what was used). */
void tbucket_take(struct tbucket *b, uint64_t n);

/* A device's limits as configured (docs/config.md); 0: not limited, and a
 * burst of 0 means one second's worth. */
struct ratelimit_conf {
	uint64_t bw, bw_burst;	 /* bytes per second, bytes */
	uint64_t ops, ops_burst; /* operations per second, operations */
};

/* A device's limiter: a bandwidth bucket (bytes) and an operations bucket. */
struct ratelimit {
	struct tbucket bytes, ops;
	uint64_t throttled; /* times a request had to wait (stats) */
};
/* Set both buckets from c (NULL: unlimited); a rate of 0 leaves that one
 * unlimited. */
void ratelimit_init(struct ratelimit *r, const struct ratelimit_conf *c, uint64_t now);
/* Is any limit set? */
bool ratelimit_on(const struct ratelimit *r);
/* Nanoseconds before one operation of `bytes` may go (0: now; a wait is
 * counted in `throttled`). Nothing is charged. bytes 0 (a size not known
 * yet) waits only while the byte bucket owes. */
uint64_t ratelimit_wait(struct ratelimit *r, uint64_t bytes, uint64_t now);
/* Charge one operation of `bytes`. */
void ratelimit_charge(struct ratelimit *r, uint64_t bytes);
/* Both: 0 and charged if it may go now, else the wait (nothing charged). */
uint64_t ratelimit_admit(struct ratelimit *r, uint64_t bytes, uint64_t now);

#endif
