/* vsock-echo: an AF_VSOCK stream peer for Linux guests (the KVM lab's vsock
 * tests; busybox has no vsock tool). Built static; needs no epoll or
 * futexes, which the guest kernel leaves out.
 *   vsock-echo listen PORT            accept one stream on PORT, echo every
 *                                     byte back until the peer closes, then
 *                                     print "echoed N bytes"
 *   vsock-echo connect CID PORT BYTES connect, send BYTES bytes of a known
 *                                     pattern while reading the echo back,
 *                                     check it byte for byte, print
 *                                     "round trip N bytes ok"
 * Exit 0 on success, 1 on a failure (said on stderr), 2 for bad usage. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define CHUNK 65536

static int usage(void)
{
	fprintf(stderr, "usage: vsock-echo listen PORT | vsock-echo connect CID PORT BYTES\n");
	return 2;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
	return 1;
}

/* The byte at stream offset i: not periodic in any buffer size we use. */
static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

static int do_listen(uint32_t port)
{
	struct sockaddr_vm a = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int l = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (l < 0)
		return fail("socket");
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		return fail("bind/listen");
	printf("listening on port %u\n", port);
	fflush(stdout);
	int c = accept(l, NULL, NULL);
	if (c < 0)
		return fail("accept");
	static char buf[CHUNK];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t k = write(c, buf + off, (size_t)(n - off));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return fail("write");
			off += k;
		}
		total += (uint64_t)n;
	}
	close(c);
	printf("echoed %llu bytes\n", (unsigned long long)total);
	return 0;
}

static int do_connect(uint32_t cid, uint32_t port, uint64_t bytes)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		return fail("connect");
	static uint8_t out[CHUNK], in[CHUNK];
	uint64_t sent = 0, got = 0;
	bool shut = false;
	/* Send and receive at once: the echo cannot hold more than the
	 * stream's credit, so a sender that never reads would stall. */
	while (got < bytes) {
		if (sent == bytes && !shut) {
			shutdown(s, SHUT_WR);
			shut = true;
		}
		struct pollfd p = {.fd = s, .events = POLLIN | (sent < bytes ? POLLOUT : 0)};
		int r = poll(&p, 1, 20000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr,
				"vsock-echo: stalled after sending %llu and receiving %llu bytes\n",
				(unsigned long long)sent, (unsigned long long)got);
			return 1;
		}
		if (p.revents & POLLOUT) {
			size_t n = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;
			for (size_t i = 0; i < n; i++)
				out[i] = pattern(sent + i);
			ssize_t k = write(s, out, n);
			if (k < 0 && errno != EAGAIN && errno != EINTR)
				return fail("write");
			if (k > 0)
				sent += (uint64_t)k;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = read(s, in, sizeof(in));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return fail("read");
			if (k == 0) {
				fprintf(stderr,
					"vsock-echo: stream closed after %llu of %llu bytes\n",
					(unsigned long long)got, (unsigned long long)bytes);
				return 1;
			}
			for (ssize_t i = 0; i < k; i++)
				if (in[i] != pattern(got + (uint64_t)i)) {
					fprintf(stderr, "vsock-echo: byte %llu differs\n",
						(unsigned long long)(got + (uint64_t)i));
					return 1;
				}
			got += (uint64_t)k;
		}
	}
	close(s);
	printf("round trip %llu bytes ok\n", (unsigned long long)got);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t cid, port, bytes;
	if (argc == 3 && !strcmp(argv[1], "listen") && !parse_u32(argv[2], &port))
		return do_listen(port);
	if (argc == 5 && !strcmp(argv[1], "connect") && !parse_u32(argv[2], &cid) &&
	    !parse_u32(argv[3], &port) && !parse_u32(argv[4], &bytes) && bytes > 0)
		return do_connect(cid, port, bytes);
	return usage();
}
