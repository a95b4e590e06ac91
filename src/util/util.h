/* Small helpers shared by every layer. */
#ifndef WISP_UTIL_H
#define WISP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole regular file of at most max bytes into a malloc'd buffer.
 * On error returns -errno (-EISDIR, -EFBIG, -ENODATA for an empty file). */
int util_read_file(const char *path, size_t max, uint8_t **buf, size_t *size);
/* Monotonic clock in nanoseconds. */
uint64_t util_now_ns(void);
/* With WISP_TRACE=1 in the environment, print to stderr the microseconds
 * since the first mark and since the previous one; else nothing. */
void util_trace(const char *what);
/* Human-readable error for util_read_file's return values. */
const char *util_file_error(int err);

#endif
