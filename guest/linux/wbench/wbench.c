/* wbench: the KVM lab's I/O benchmarks, for Linux guests and for L1 alike
 * (built static; no epoll, threads or futexes, which the guest kernel
 * leaves out).
 *   wbench read DEV MIB [KIB]      read MIB MiB of DEV from its start with
 *                                  O_DIRECT (no page cache), KIB KiB per
 *                                  read (default 1024), one at a time
 *   wbench sink PORT               accept one TCP stream on PORT, read it to
 *                                  the end; timed from its first byte
 *   wbench source ADDR PORT MIB    connect (retrying for up to 60 s while
 *                                  refused), send MIB MiB, close
 * read and sink print "wbench: BYTES bytes in MS ms = RATE MB/s"
 * (MB = 10^6 bytes). Exit 0 on success, 1 on a failure, 2 for bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NET_CHUNK (256u << 10)

static int usage(void)
{
	fprintf(stderr, "usage: wbench read DEV MIB [KIB] | wbench sink PORT | "
			"wbench source ADDR PORT MIB\n");
	return 2;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "wbench: %s: %s\n", what, strerror(errno));
	return 1;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void report(uint64_t bytes, double ms)
{
	printf("wbench: %llu bytes in %.1f ms = %.2f MB/s\n", (unsigned long long)bytes, ms,
	       ms > 0 ? bytes / ms / 1e3 : 0.0);
}

static int do_read(const char *dev, uint32_t mib, uint32_t kib)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return fail(dev);
	size_t bs = (size_t)kib << 10;
	void *buf;
	if (posix_memalign(&buf, 4096, bs)) {
		fprintf(stderr, "wbench: out of memory\n");
		return 1;
	}
	uint64_t want = (uint64_t)mib << 20, got = 0;
	double t0 = now_ms();
	while (got < want) {
		size_t n = want - got < bs ? (size_t)(want - got) : bs;
		ssize_t k = pread(fd, buf, n, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return fail("read");
		if (k == 0) {
			fprintf(stderr, "wbench: %s ends after %llu bytes\n", dev,
				(unsigned long long)got);
			return 1;
		}
		got += (uint64_t)k;
	}
	report(got, now_ms() - t0);
	return 0;
}

static int do_sink(uint32_t port)
{
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (l < 0)
		return fail("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		return fail("bind/listen");
	printf("wbench: listening on port %u\n", port);
	fflush(stdout);
	int c = accept(l, NULL, NULL);
	if (c < 0)
		return fail("accept");
	static char buf[NET_CHUNK];
	uint64_t got = 0;
	double t0 = 0;
	for (;;) {
		ssize_t k = read(c, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return fail("read");
		if (k == 0)
			break;
		if (!got)
			t0 = now_ms();
		got += (uint64_t)k;
	}
	double ms = got ? now_ms() - t0 : 0;
	close(c);
	report(got, ms);
	return got ? 0 : 1;
}

static int do_source(const char *addr, uint32_t port, uint32_t mib)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		return usage();
	int s = -1;
	double t0 = now_ms();
	for (;;) { /* the sink may not listen yet */
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			return fail("socket");
		if (!connect(s, (struct sockaddr *)&a, sizeof(a)))
			break;
		if ((errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH) ||
		    now_ms() - t0 > 60000)
			return fail("connect");
		close(s);
		usleep(200000);
	}
	static char buf[NET_CHUNK];
	memset(buf, 'w', sizeof(buf));
	uint64_t want = (uint64_t)mib << 20, sent = 0;
	while (sent < want) {
		size_t n = want - sent < sizeof(buf) ? (size_t)(want - sent) : sizeof(buf);
		ssize_t k = write(s, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return fail("write");
		sent += (uint64_t)k;
	}
	close(s);
	printf("wbench: sent %llu bytes\n", (unsigned long long)sent);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t a, b, c = 1024;
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "read") &&
	    !parse_u32(argv[3], 65536, &a) && a &&
	    (argc == 4 || (!parse_u32(argv[4], 65536, &c) && c)))
		return do_read(argv[2], a, c);
	if (argc == 3 && !strcmp(argv[1], "sink") && !parse_u32(argv[2], 65535, &a) && a)
		return do_sink(a);
	if (argc == 5 && !strcmp(argv[1], "source") && !parse_u32(argv[3], 65535, &a) && a &&
	    !parse_u32(argv[4], 65536, &b) && b)
		return do_source(argv[2], a, b);
	return usage();
}
