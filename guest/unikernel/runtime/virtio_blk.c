/* Polling virtio-blk driver: one request at a time, each a chain of header
 * (readable), data, and status byte (writable). */
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "wrt_virtio.h"

#define BLK_QSIZE 16

static uint8_t blk_ring[4][WRT_VQ_MEM(BLK_QSIZE)] __attribute__((aligned(4096)));

int wrt_blk_open(struct wrt_blk *b, int nth)
{
	if (nth < 0 || nth >= 4 || wrt_virtio_find(VIRTIO_ID_BLOCK, nth, &b->dev) ||
	    wrt_virtio_init(&b->dev, 1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_FLUSH) ||
	    wrt_vq_init(&b->dev, &b->vq, 0, BLK_QSIZE, blk_ring[nth]))
		return -1;
	wrt_virtio_config(&b->dev, 0, &b->sectors, sizeof(b->sectors));
	b->ro = !!(b->dev.features & 1ull << VIRTIO_BLK_F_RO);
	wrt_virtio_ready(&b->dev);
	return 0;
}

/* Send one request and wait for its status. */
static int request(struct wrt_blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len,
		   int writable)
{
	struct virtio_blk_outhdr h = {.type = type, .sector = sector};
	volatile uint8_t status = 0xff;
	struct wrt_buf bufs[3] = {{&h, sizeof(h), 0}};
	int n = 1;
	if (len)
		bufs[n++] = (struct wrt_buf){data, len, writable};
	bufs[n++] = (struct wrt_buf){(void *)&status, 1, 1};
	if (wrt_vq_add(&b->vq, bufs, n) < 0)
		return -1;
	wrt_vq_kick(&b->vq);
	if (wrt_vq_wait(&b->vq, NULL, 5000000000ull) < 0)
		return -1;
	return status;
}

int wrt_blk_read(struct wrt_blk *b, uint64_t sector, void *buf, uint32_t count)
{
	return request(b, VIRTIO_BLK_T_IN, sector, buf, count * 512u, 1);
}

int wrt_blk_write(struct wrt_blk *b, uint64_t sector, const void *buf, uint32_t count)
{
	return request(b, VIRTIO_BLK_T_OUT, sector, (void *)buf, count * 512u, 0);
}

int wrt_blk_flush(struct wrt_blk *b)
{
	return request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0);
}

int wrt_blk_id(struct wrt_blk *b, char id[21])
{
	memset(id, 0, 21);
	return request(b, VIRTIO_BLK_T_GET_ID, 0, id, 20, 1);
}
