/* The console ring (util.h): one writer (the VMM), any number of readers
 * in other processes. The writer copies the bytes, then publishes the new
 * head with a release store; a reader loads head with acquire, copies, and
 * loads head again to learn whether the writer lapped it meanwhile. The
 * file comes from another process, so a reader trusts only the file size
 * and copes with any head value. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static int ring_map(int fd, uint64_t size, int prot, struct ring *r)
{
	size_t len = RING_HDR_SIZE + (size_t)size;
	void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->hdr = p;
	r->data = (uint8_t *)p + RING_HDR_SIZE;
	r->size = size;
	r->map_len = len;
	return 0;
}

int ring_create(int dirfd, const char *name, uint64_t size, struct ring *r)
{
	memset(r, 0, sizeof(*r));
	if (size == 0 || size > (1ull << 30))
		return -EINVAL;
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int e = 0;
	if (ftruncate(fd, (off_t)(RING_HDR_SIZE + size)) < 0)
		e = -errno;
	else
		e = ring_map(fd, size, PROT_READ | PROT_WRITE, r);
	close(fd);
	if (e)
		return e;
	r->hdr->size = size;
	r->hdr->head = 0;
	__atomic_store_n(&r->hdr->magic, RING_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int ring_open(int dirfd, const char *name, struct ring *r)
{
	memset(r, 0, sizeof(*r));
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int e = 0;
	if (fstat(fd, &st) < 0)
		e = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_size <= (off_t)RING_HDR_SIZE ||
		 st.st_size > (off_t)(RING_HDR_SIZE + (1ull << 30)))
		e = -EINVAL;
	else
		e = ring_map(fd, (uint64_t)st.st_size - RING_HDR_SIZE, PROT_READ, r);
	close(fd);
	if (e)
		return e;
	if (__atomic_load_n(&r->hdr->magic, __ATOMIC_ACQUIRE) != RING_MAGIC) {
		ring_close(r);
		return -EINVAL;
	}
	return 0;
}

void ring_write(struct ring *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t head = r->hdr->head;
	uint64_t end = head + len;
	if (len > r->size) { /* only the last r->size bytes survive */
		p += len - r->size;
		len = (size_t)r->size;
	}
	uint64_t at = (end - len) % r->size;
	size_t first = len < r->size - at ? len : (size_t)(r->size - at);
	memcpy(r->data + at, p, first);
	memcpy(r->data, p + first, len - first);
	__atomic_store_n(&r->hdr->head, end, __ATOMIC_RELEASE);
}

uint64_t ring_head(const struct ring *r)
{
	return __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
}

size_t ring_read(const struct ring *r, uint64_t *pos, void *buf, size_t max, uint64_t *lost)
{
	uint64_t missed = 0;
	size_t n = 0;
	for (int tries = 0; tries < 8; tries++) {
		uint64_t head = ring_head(r);
		uint64_t oldest = head > r->size ? head - r->size : 0;
		if (*pos > head) /* a reader from before a restart, or a bad header */
			*pos = head;
		if (*pos < oldest) {
			missed += oldest - *pos;
			*pos = oldest;
		}
		n = head - *pos < max ? (size_t)(head - *pos) : max;
		uint64_t at = *pos % r->size;
		size_t first = n < r->size - at ? n : (size_t)(r->size - at);
		memcpy(buf, r->data + at, first);
		memcpy((uint8_t *)buf + first, r->data, n - first);
		/* Did the writer overwrite what we copied while we copied it? */
		uint64_t after = ring_head(r);
		if (after <= r->size || after - r->size <= *pos)
			break;
		n = 0; /* lapped: start again from the new oldest byte */
	}
	*pos += n;
	if (lost)
		*lost = missed;
	return n;
}

void ring_close(struct ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_len);
	memset(r, 0, sizeof(*r));
}
