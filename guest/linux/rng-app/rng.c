/* rng: the course's RNG device from Linux user space, through the wisp_rng
 * driver's /dev/wisp-rng.
 *   rng get N        print N random 32-bit numbers, one per line, in decimal
 *   rng seed S       seed the generator with S (0..4294967295)
 *   rng bench [SEC]  read for SEC seconds (default 1) and print the rate
 * $WISP_RNG_DEV overrides the device path (for tests). Exit 0 on success,
 * 1 when the device fails or is absent, 2 for bad usage. Built static. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../rng-driver/wisp_rng_ioctl.h"

#define DEFAULT_DEV "/dev/" WISP_RNG_DEVNAME
#define BLOCK_WORDS 1024

static const char *dev_path(void)
{
	const char *p = getenv("WISP_RNG_DEV");
	return p && *p ? p : DEFAULT_DEV;
}

static int usage(void)
{
	fprintf(stderr, "usage: rng get N | rng seed S | rng bench [SECONDS]\n");
	return 2;
}

/* Strict unsigned parse: decimal or 0x hex, nothing else, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int open_dev(int flags)
{
	int fd = open(dev_path(), flags | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		fprintf(stderr, "rng: %s: %s", dev_path(), strerror(e));
		if (e == ENOENT || e == ENODEV || e == ENXIO)
			fprintf(stderr, " (no RNG device: start the VM with wisp run "
					"--rng-device and load the wisp_rng module)");
		fputc('\n', stderr);
	}
	return fd;
}

/* Fill buf with exactly n words; the driver may return fewer per call. */
static int read_words(int fd, uint32_t *buf, size_t n)
{
	size_t done = 0, want = n * sizeof(uint32_t);
	while (done < want) {
		ssize_t r = read(fd, (char *)buf + done, want - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "rng: reading %s: %s\n", dev_path(),
				r < 0 ? strerror(errno) : "unexpected end of data");
			return -1;
		}
		if (r % sizeof(uint32_t)) {
			fprintf(stderr, "rng: %s returned %zd bytes, not whole 32-bit words\n",
				dev_path(), r);
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

static int cmd_get(const char *arg)
{
	uint64_t n;
	if (parse_u64(arg, UINT32_MAX, &n)) {
		fprintf(stderr, "rng: get '%s': N must be a number from 0 to 4294967295\n",
			arg ? arg : "");
		return 2;
	}
	int fd = open_dev(O_RDONLY);
	if (fd < 0)
		return 1;
	static uint32_t buf[BLOCK_WORDS];
	while (n) {
		size_t k = n < BLOCK_WORDS ? (size_t)n : BLOCK_WORDS;
		if (read_words(fd, buf, k)) {
			close(fd);
			return 1;
		}
		for (size_t i = 0; i < k; i++)
			printf("%" PRIu32 "\n", buf[i]);
		n -= k;
	}
	close(fd);
	return fflush(stdout) ? 1 : 0;
}

static int cmd_seed(const char *arg)
{
	uint64_t s;
	if (parse_u64(arg, UINT32_MAX, &s)) {
		fprintf(stderr, "rng: seed '%s': S must be a number from 0 to 4294967295\n",
			arg ? arg : "");
		return 2;
	}
	int fd = open_dev(O_WRONLY);
	if (fd < 0)
		return 1;
	uint32_t seed = (uint32_t)s;
	int r = ioctl(fd, WISP_RNG_IOC_SEED, &seed);
	if (r < 0)
		fprintf(stderr, "rng: seeding %s: %s\n", dev_path(), strerror(errno));
	close(fd);
	return r < 0 ? 1 : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_bench(const char *arg)
{
	uint64_t secs = 1;
	if (arg && (parse_u64(arg, 3600, &secs) || secs == 0)) {
		fprintf(stderr, "rng: bench '%s': SECONDS must be a number from 1 to 3600\n", arg);
		return 2;
	}
	int fd = open_dev(O_RDONLY);
	if (fd < 0)
		return 1;
	static uint32_t buf[BLOCK_WORDS];
	uint64_t words = 0;
	double t0 = now_s(), t;
	do {
		if (read_words(fd, buf, 256)) {
			close(fd);
			return 1;
		}
		words += 256;
	} while ((t = now_s() - t0) < (double)secs);
	close(fd);
	printf("bench: %" PRIu64 " numbers in %.3f s: %.0f numbers/s, %.0f bytes/s\n", words, t,
	       (double)words / t, (double)words * 4 / t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		return usage();
	const char *arg = argc > 2 ? argv[2] : NULL;
	if (!strcmp(argv[1], "get") && arg)
		return cmd_get(arg);
	if (!strcmp(argv[1], "seed") && arg)
		return cmd_seed(arg);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(arg);
	return usage();
}
