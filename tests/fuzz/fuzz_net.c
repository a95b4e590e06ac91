/* Fuzz target: virtio-net, with a datagram socketpair as the TAP. Host
 * action: a frame arrives from the "TAP". Frames the guest sends are read
 * and dropped. */
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_QUEUES 2
#include "fuzz_device.h"

static int peer = -1;

static struct virtio_dev *fuzz_make(void)
{
	char err[256];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return NULL;
	peer = sv[1];
	struct virtio_net_opts o = {.tap = "fuzz", .mac = {2, 0, 0, 0, 0, 1}, .tap_fd = sv[0]};
	struct virtio_dev *d = virtio_net_create(&o, err, sizeof(err));
	if (!d)
		close(sv[0]);
	return d;
}

static void fuzz_host(struct vh *h, const uint8_t *p, size_t n)
{
	char sink[2048];
	while (recv(peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	send(peer, p, n, MSG_DONTWAIT);
	ioloop_run_once(&h->loop, 0);
}

static void fuzz_cleanup(void)
{
	if (peer >= 0)
		close(peer);
	peer = -1;
}
