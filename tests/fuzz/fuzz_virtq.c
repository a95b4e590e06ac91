/* Fuzz target: the virtqueue walker on rings the input writes directly.
 * Input: u8 flags (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), u8 log2(size),
 * u16 desc, u16 avail, u16 used (ring offsets in RAM), then the first bytes
 * of guest RAM (64 KiB of it, malloc'd: ASan sees any stray access). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "vmm/vmm.h"

#define RAM (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	uint8_t *ram = calloc(1, RAM);
	if (!ram)
		return 0;
	memcpy(ram, data + 8, size - 8 < RAM ? size - 8 : RAM);
	struct guest_mem mem = {.memfd = -1, .size = RAM, .base = ram, .nr_regions = 1};
	mem.regions[0] = (struct mem_region){.gpa = 0, .size = RAM, .host = ram};
	uint16_t off[3];
	memcpy(off, data + 2, 6);
	static struct virtq q;
	static struct virtq_chain c;
	memset(&q, 0, sizeof(q));
	q.s.num = (uint16_t)(1u << (data[1] % 10)); /* up to 512: too big is an error too */
	q.s.desc_gpa = off[0];
	q.s.avail_gpa = off[1];
	q.s.used_gpa = off[2];
	q.max_bytes = data[0] & 4 ? 4096 : 0;
	if (virtq_setup(&q, &mem, data[0] & 1, data[0] & 2) == 0) {
		q.s.ready = true;
		for (int i = 0; i < 2 * q.s.num + 2; i++) {
			int r = virtq_pop(&q, &c);
			if (r < 0)
				break;
			if (r == 0 && !virtq_enable_notify(&q))
				break;
			if (r == 1) {
				/* Touch every byte the walker handed out. */
				uint8_t sum = 0;
				for (int k = 0; k < c.nr_r + c.nr_w; k++)
					for (size_t j = 0; j < c.iov[k].iov_len; j++)
						sum ^= ((uint8_t *)c.iov[k].iov_base)[j];
				virtq_write(&c, 0, &sum, 1);
				virtq_push(&q, c.head, (uint32_t)(c.w_len ? 1 : 0));
				virtq_need_interrupt(&q);
			}
		}
	}
	free(ram);
	return 0;
}
