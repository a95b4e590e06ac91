/* Fuzz target: virtio-console on pipes, with the MULTIPORT control queues
 * (2 and 3) when the input's feature byte has bit 3. Host action: input
 * typed at the console. Output is drained. */
#include <fcntl.h>
#include <unistd.h>

#define FUZZ_QUEUES 4
#include "fuzz_device.h"

static int in[2] = {-1, -1}, out[2] = {-1, -1};

static struct virtio_dev *fuzz_make(void)
{
	char err[256];
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC | O_NONBLOCK))
		return NULL;
	struct virtio_console_opts o = {.in_fd = in[0], .out_fd = out[1]};
	return virtio_console_create(&o, err, sizeof(err));
}

static void fuzz_host(struct vh *h, const uint8_t *p, size_t n)
{
	char sink[4096];
	while (read(out[0], sink, sizeof(sink)) > 0)
		;
	if (n && write(in[1], p, n) < 0)
		return;
	ioloop_run_once(&h->loop, 0);
}

static void fuzz_cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		in[i] = out[i] = -1;
	}
}
