/* Reading whole files (images, kernels, initrds), with errors that say what
 * was wrong. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

int util_read_file(const char *path, size_t max, uint8_t **buf, size_t *size)
{
	/* O_NONBLOCK: a FIFO named as an image must not block us in open()
	 * (it is refused below: not a regular file). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (st.st_size == 0)
		r = -ENODATA;
	else if ((uint64_t)st.st_size > max)
		r = -EFBIG;
	if (r) {
		close(fd);
		return r;
	}
	size_t n = (size_t)st.st_size, done = 0;
	uint8_t *b = malloc(n);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (done < n) {
		ssize_t k = read(fd, b + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : -EIO;
			free(b);
			close(fd);
			return r;
		}
		done += (size_t)k;
	}
	close(fd);
	*buf = b;
	*size = n;
	return 0;
}

const char *util_file_error(int err)
{
	switch (err) {
	case -ENODATA:
		return "file is empty";
	case -EFBIG:
		return "file is too large";
	case -EINVAL:
		return "not a regular file";
	default:
		return strerror(-err);
	}
}

void util_runtime_dir(char *buf, size_t len)
{
	const char *env = getenv("WISP_RUNTIME_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/wisp");
	else if (xdg && *xdg)
		snprintf(buf, len, "%s/wisp", xdg);
	else
		snprintf(buf, len, "/tmp/wisp-%u", (unsigned)geteuid());
}

uint64_t util_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void util_trace(const char *what)
{
	static int enabled = -1;
	static uint64_t start, last;
	if (enabled < 0) {
		const char *e = getenv("WISP_TRACE");
		enabled = e && *e == '1';
		start = last = util_now_ns();
	}
	if (!enabled)
		return;
	uint64_t t = util_now_ns();
	fprintf(stderr, "wisp-trace: %8.1f us  (+%7.1f)  %s\n", (double)(t - start) / 1e3,
		(double)(t - last) / 1e3, what);
	last = t;
}
