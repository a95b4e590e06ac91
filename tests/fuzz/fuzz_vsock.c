/* Fuzz target: virtio-vsock, the packet parser and stream state machine
 * (CVE-2019-18960 territory). The host side is real unix sockets: a
 * listener on PATH_1 accepts guest connections to port 1. Host actions
 * (first byte): 0 connect to the device and send the rest ("CONNECT 5\n"
 * and data), 1 send the rest on the last host connection, 2 close it,
 * 3 accept and echo on the port-1 listener. */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FUZZ_QUEUES 3
#include "fuzz_device.h"

static char path[64], lpath[80];
static int listener = -1, host = -1, accepted = -1;

static int unix_socket(const char *p, bool listen_it)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int r = listen_it ? bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4)
			  : connect(s, (struct sockaddr *)&a, sizeof(a));
	if (r) {
		close(s);
		return -1;
	}
	return s;
}

static struct virtio_dev *fuzz_make(void)
{
	char err[256];
	snprintf(path, sizeof(path), "/tmp/wisp-fuzz-%d.sock", getpid());
	snprintf(lpath, sizeof(lpath), "%s_1", path);
	unlink(path);
	unlink(lpath);
	listener = unix_socket(lpath, true);
	struct virtio_vsock_opts o = {.cid = 3, .uds_path = path};
	return virtio_vsock_create(&o, err, sizeof(err));
}

static void fuzz_host(struct vh *h, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	switch (p[0] % 4) {
	case 0:
		if (host >= 0)
			close(host);
		host = unix_socket(path, false);
		/* fall through: send the rest */
	case 1:
		if (host >= 0 && n > 1)
			send(host, p + 1, n - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	case 2:
		if (host >= 0)
			close(host);
		host = -1;
		break;
	case 3: {
		char buf[4096];
		if (accepted < 0 && listener >= 0)
			accepted = accept(listener, NULL, NULL);
		ssize_t k = accepted >= 0 ? recv(accepted, buf, sizeof(buf), MSG_DONTWAIT) : -1;
		if (k > 0)
			send(accepted, buf, (size_t)k, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	}
	}
	ioloop_run_once(&h->loop, 0);
	ioloop_run_once(&h->loop, 0);
}

static void fuzz_cleanup(void)
{
	int *fds[] = {&listener, &host, &accepted};
	for (int i = 0; i < 3; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	unlink(lpath);
	unlink(path);
}
