/* Fuzz target: the migration stream as a receiver parses it, below TLS
 * (the transport hands the VMM plaintext; src/snapshot/migrate.c). The
 * input is one flag byte, a hello, then the frames a source sends: pages,
 * round marks, the state section. The hello is checked against the size a
 * receive request asked for; the frames land in a scratch guest memory, and
 * the state section is then parsed as a receiver would. With the flag's low
 * bit set, the frames' checksums are made right first, so that the fuzzer
 * reaches what lies behind them (a source can always send valid ones). */
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"

#define MEM_SIZE (32ull << 20)

static volatile uint64_t sink;

/* Walk the frames as the receiver will and set each checksum. */
static void fix_hashes(uint8_t *p, size_t len)
{
	size_t at = 0;
	while (at + 4 <= len) {
		uint32_t type;
		memcpy(&type, p + at, 4);
		if (type == 1 && at + 24 <= len) { /* pages {type, count, off, hash} */
			uint32_t count;
			memcpy(&count, p + at + 4, 4);
			uint64_t n = (uint64_t)count * 4096;
			if (n > len - at - 24)
				return;
			uint64_t h = snap_hash(p + at + 24, n);
			memcpy(p + at + 16, &h, 8);
			at += 24 + n;
		} else if (type == 2) { /* round {type, round} */
			at += 8;
		} else if (type == 3 && at + 24 <= len) { /* state {type, pad, len, hash} */
			uint64_t n;
			memcpy(&n, p + at + 8, 8);
			if (n > len - at - 24)
				return;
			uint64_t h = snap_hash(p + at + 24, n);
			memcpy(p + at + 16, &h, 8);
			return;
		} else {
			return;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	if (!mem && !(mem = malloc(MEM_SIZE)))
		return 0;
	if (size < 1 + sizeof(struct mig_hello))
		return 0;
	char err[WISP_ERRLEN], why[200];
	/* An exact-size copy: ASan flags any read past the end. */
	size_t len = size - 1 - sizeof(struct mig_hello);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1 + sizeof(struct mig_hello), len);
	if (data[0] & 1)
		fix_hashes(buf, len);
	struct mig_conn c = {.fd = -1, .watch_fd = -1, .buf = data + 1, .len = size - 1};
	struct mig_hello h;
	if (mig_read_hello(&c, &h, err, sizeof(err)) == 0 &&
	    (mig_check_hello(&h, 1, MEM_SIZE, why, sizeof(why)) == 0 || (data[0] & 2))) {
		c.buf = buf;
		c.len = len;
		uint8_t *state;
		size_t slen;
		if (mig_rx_frames(&c, mem, MEM_SIZE, &state, &slen, err, sizeof(err)) == 0) {
			struct snap_image img;
			if (snap_parse_state(state, slen, MEM_SIZE, &img, err, sizeof(err)) == 0) {
				sink += (uint64_t)img.nr_vcpus + img.nr_extents;
				snap_image_free(&img);
			}
			free(state);
		}
	}
	free(buf);
	return 0;
}
