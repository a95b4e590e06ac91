/* Guest memory: one memfd (so that snapshot and migration can map or send
 * it), mapped MAP_SHARED once, and cut into regions around holes in the
 * guest-physical map. gmem_ptr() is the single gate through which the VMM
 * reaches guest memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vmm.h"

int gmem_init(struct guest_mem *mem, uint64_t size)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	mem->backing_fd = -1;
	if (size == 0 || size % 4096)
		return -EINVAL;
	mem->memfd = memfd_create("wisp-guest-ram", MFD_CLOEXEC);
	if (mem->memfd < 0)
		return -errno;
	if (ftruncate(mem->memfd, (off_t)size) < 0)
		goto fail;
	void *p =
		mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mem->memfd, 0);
	if (p == MAP_FAILED)
		goto fail;
	mem->base = p;
	mem->size = size;
	return 0;
fail:;
	int e = errno;
	close(mem->memfd);
	mem->memfd = -1;
	return -e;
}

int gmem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, uint64_t fd_offset)
{
	if (mem->nr_regions == WISP_MAX_MEM_REGIONS)
		return -ENOSPC;
	if (size == 0 || gpa + size < gpa || fd_offset > mem->size || size > mem->size - fd_offset)
		return -EINVAL;
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	mem->regions[mem->nr_regions++] = (struct mem_region){
		.gpa = gpa, .size = size, .fd_offset = fd_offset, .host = mem->base + fd_offset};
	return 0;
}

void gmem_advise_huge(struct guest_mem *mem)
{
	if (mem->base)
		madvise(mem->base, mem->size, MADV_HUGEPAGE);
}

void gmem_destroy(struct guest_mem *mem)
{
	if (mem->base)
		munmap(mem->base, mem->size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	if (mem->backing_fd >= 0)
		close(mem->backing_fd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	mem->backing_fd = -1;
}

int gmem_map_file(struct guest_mem *mem, int fd, uint64_t off)
{
	if (!mem->base || off % 4096)
		return -EINVAL;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return -errno;
	/* MAP_FIXED replaces the memfd pages in place: the memslots keep their
	 * userspace address, and KVM's MMU notifier drops its old mappings. */
	void *p = mmap(mem->base, mem->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, dup, (off_t)off);
	if (p == MAP_FAILED) {
		int e = errno;
		close(dup);
		return -e;
	}
	if (mem->memfd >= 0)
		close(mem->memfd); /* its pages go with it */
	if (mem->backing_fd >= 0)
		close(mem->backing_fd);
	mem->memfd = -1;
	mem->backing_fd = dup;
	mem->backing_off = off;
	return 0;
}

/* Data extents of fd within [start, start+len), relative to start. */
static int fd_extents(int fd, uint64_t start, uint64_t len, uint8_t *map)
{
	uint64_t pos = start, end = start + len;
	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				break; /* no data after pos */
			return -errno;
		}
		if ((uint64_t)d >= end)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		uint64_t a = ((uint64_t)d - start) / 4096;
		uint64_t b = ((uint64_t)h < end ? (uint64_t)h - start + 4095 : len) / 4096;
		memset(map + a, 1, b - a);
		pos = (uint64_t)h;
	}
	return 0;
}

/* Pages of [base, base+len) present in our page tables (/proc/self/pagemap
 * bit 63): for a private file mapping, every page the guest wrote is one. */
static int present_pages(const uint8_t *base, uint64_t len, uint8_t *map)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t pages = len / 4096, first = (uintptr_t)base / 4096;
	uint64_t buf[512];
	int r = 0;
	for (uint64_t i = 0; i < pages;) {
		uint64_t n = pages - i < 512 ? pages - i : 512;
		ssize_t got = pread(fd, buf, n * 8, (off_t)((first + i) * 8));
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		n = (uint64_t)got / 8;
		for (uint64_t k = 0; k < n; k++)
			if (buf[k] >> 63)
				map[i + k] = 1;
		i += n;
	}
	close(fd);
	return r;
}

int gmem_extents(const struct guest_mem *mem, int (*fn)(void *opaque, uint64_t off, uint64_t len),
		 void *opaque)
{
	uint64_t pages = mem->size / 4096;
	uint8_t *map = calloc(pages ? pages : 1, 1);
	if (!map)
		return -ENOMEM;
	int r;
	if (mem->memfd >= 0) {
		r = fd_extents(mem->memfd, 0, mem->size, map);
	} else if (mem->backing_fd >= 0) {
		r = fd_extents(mem->backing_fd, mem->backing_off, mem->size, map);
		if (!r)
			r = present_pages(mem->base, mem->size, map);
	} else {
		r = -EINVAL;
	}
	for (uint64_t i = 0; !r && i < pages;) {
		if (!map[i]) {
			i++;
			continue;
		}
		uint64_t j = i;
		while (j < pages && map[j])
			j++;
		r = fn(opaque, i * 4096, (j - i) * 4096);
		i = j;
	}
	free(map);
	return r;
}

void *gmem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];
		/* Written so that nothing can overflow: gpa - r->gpa only once we
		 * know gpa >= r->gpa, and len compared against what is left. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gmem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int gmem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gmem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}
