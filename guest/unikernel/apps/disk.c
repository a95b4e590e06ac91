/* disk: the virtio-blk driver at work. Commands:
 *   cksum               read the whole disk, print "cksum CRC BYTES" as
 *                       POSIX cksum(1) prints for the image file
 *   bench               read the whole disk in 64 KiB requests, print MB/s
 *   info | id           capacity and read-only flag | the device's ID string
 *   write SECTOR TEXT   write TEXT (zero-padded) to SECTOR, then flush
 *   read SECTOR         print the text stored at SECTOR */
#include "wrt_virtio.h"

#define CHUNK_SECTORS 128

static uint8_t buf[CHUNK_SECTORS * 512];
static uint32_t crc_table[256];

/* POSIX cksum: CRC-32, polynomial 0x04C11DB7, most significant bit first. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crc = crc << 8 ^ crc_table[(crc >> 24 ^ p[i]) & 0xff];
	return crc;
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;
		for (int k = 0; k < 8; k++)
			c = c & 0x80000000u ? c << 1 ^ 0x04c11db7u : c << 1;
		crc_table[i] = c;
	}
}

static int cksum(struct wrt_blk *b)
{
	crc_init();
	uint32_t crc = 0;
	uint64_t t0 = rt_monotonic_ns();
	for (uint64_t s = 0; s < b->sectors; s += CHUNK_SECTORS) {
		uint32_t n =
			b->sectors - s < CHUNK_SECTORS ? (uint32_t)(b->sectors - s) : CHUNK_SECTORS;
		int st = wrt_blk_read(b, s, buf, n);
		if (st) {
			rt_printf("disk: read of sector %lu failed (status %d)\n", (unsigned long)s,
				  st);
			return 1;
		}
		crc = crc_update(crc, buf, n * 512u);
	}
	uint64_t ns = rt_monotonic_ns() - t0;
	uint64_t bytes = b->sectors * 512;
	/* cksum appends the length, least significant byte first, then inverts. */
	for (uint64_t len = bytes; len; len >>= 8) {
		uint8_t c = (uint8_t)len;
		crc = crc_update(crc, &c, 1);
	}
	rt_printf("cksum %u %lu\n", ~crc, (unsigned long)bytes);
	rt_printf("disk: read %lu KiB in %lu us\n", (unsigned long)(bytes >> 10),
		  (unsigned long)(ns / 1000));
	return 0;
}

static int bench(struct wrt_blk *b)
{
	uint64_t t0 = rt_monotonic_ns();
	for (uint64_t s = 0; s < b->sectors; s += CHUNK_SECTORS) {
		uint32_t n =
			b->sectors - s < CHUNK_SECTORS ? (uint32_t)(b->sectors - s) : CHUNK_SECTORS;
		if (wrt_blk_read(b, s, buf, n))
			return 1;
	}
	uint64_t ns = rt_monotonic_ns() - t0, bytes = b->sectors * 512;
	rt_printf("bench: %lu bytes in %lu us: %lu bytes/s\n", (unsigned long)bytes,
		  (unsigned long)(ns / 1000),
		  (unsigned long)(bytes * 1000000000ull / (ns ? ns : 1)));
	return 0;
}

int main(int argc, char **argv)
{
	static struct wrt_blk b;
	const char *cmd = argc > 1 ? argv[1] : "";
	if (wrt_blk_open(&b, 0)) {
		rt_puts("disk: no virtio-blk device (run with --disk)");
		return 1;
	}
	if (!strcmp(cmd, "cksum"))
		return cksum(&b);
	if (!strcmp(cmd, "bench"))
		return bench(&b);
	if (!strcmp(cmd, "info")) {
		rt_printf("sectors %lu ro %d\n", (unsigned long)b.sectors, b.ro);
		return 0;
	}
	if (!strcmp(cmd, "id")) {
		char id[21];
		int st = wrt_blk_id(&b, id);
		rt_printf("id: %s (status %d)\n", id, st);
		return st ? 1 : 0;
	}
	long long sector = argc > 2 ? rt_atoll(argv[2]) : -1;
	if (!strcmp(cmd, "write") && argc > 3 && sector >= 0) {
		memset(buf, 0, 512);
		size_t n = strlen(argv[3]);
		memcpy(buf, argv[3], n < 511 ? n : 511);
		int w = wrt_blk_write(&b, (uint64_t)sector, buf, 1);
		int f = wrt_blk_flush(&b);
		rt_printf("write: status %d, flush: status %d\n", w, f);
		return w || f ? 1 : 0;
	}
	if (!strcmp(cmd, "read") && sector >= 0) {
		int st = wrt_blk_read(&b, (uint64_t)sector, buf, 1);
		buf[511] = 0;
		rt_printf("read: status %d: %s\n", st, (char *)buf);
		return st ? 1 : 0;
	}
	rt_puts("usage: disk cksum|bench|info|id|write SECTOR TEXT|read SECTOR");
	return 2;
}
