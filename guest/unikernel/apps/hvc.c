/* hvc: talks over virtio-console (the guest side of hvc0): prints a prompt,
 * then answers each input line with "hvc: got LINE" until it reads "quit".
 * Usage: hvc (with wisp run --console virtio[,sock=PATH]); `hvc flood`
 * prints lines for ever instead (a consumer that stalls must not pin the VM). */
#include <linux/virtio_ids.h>

#include "wrt_virtio.h"

static struct wrt_virtio dev;
static struct wrt_vq rx, tx;
static uint8_t rx_ring[WRT_VQ_MEM(8)] __attribute__((aligned(4096)));
static uint8_t tx_ring[WRT_VQ_MEM(8)] __attribute__((aligned(4096)));
static char in[256], out[320];

static char *find_nl(char *s)
{
	for (; *s; s++)
		if (*s == '\n')
			return s;
	return NULL;
}

static void say(const char *s, size_t n)
{
	struct wrt_buf b = {(void *)s, (uint32_t)n, 0};
	wrt_vq_add(&tx, &b, 1);
	wrt_vq_kick(&tx);
	wrt_vq_wait(&tx, NULL, 2000000000ull); /* the buffer is reused next time */
}

int main(int argc, char **argv)
{
	if (wrt_virtio_find(VIRTIO_ID_CONSOLE, 0, &dev) || wrt_virtio_init(&dev, 0) ||
	    wrt_vq_init(&dev, &rx, 0, 8, rx_ring) || wrt_vq_init(&dev, &tx, 1, 8, tx_ring)) {
		rt_puts("hvc: no virtio-console device (run with --console virtio)");
		return 1;
	}
	wrt_virtio_ready(&dev);
	say("hvc: ready\n", 11);
	if (argc > 1 && !strcmp(argv[1], "flood"))
		for (;;)
			say("hvc: flood ......................................................\n",
			    66);
	size_t have = 0;
	for (;;) {
		struct wrt_buf b = {in + have, (uint32_t)(sizeof(in) - 1 - have), 1};
		wrt_vq_add(&rx, &b, 1);
		wrt_vq_kick(&rx);
		uint32_t got = 0;
		if (wrt_vq_wait(&rx, &got, UINT64_MAX) < 0)
			return 1;
		have += got;
		in[have] = 0;
		char *nl;
		while ((nl = find_nl(in))) {
			*nl = 0;
			if (!strcmp(in, "quit")) {
				say("hvc: bye\n", 9);
				return 0;
			}
			int n = rt_snprintf(out, sizeof(out), "hvc: got %s\n", in);
			say(out, (size_t)n);
			size_t rest = have - (size_t)(nl + 1 - in);
			memmove(in, nl + 1, rest + 1);
			have = rest;
		}
		if (have == sizeof(in) - 1)
			have = 0; /* a line too long for us: dropped */
	}
}
