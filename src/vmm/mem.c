/* Guest memory: one memfd (so that snapshot and migration can map or send
 * it), mapped MAP_SHARED once, and cut into regions around holes in the
 * guest-physical map. gmem_ptr() is the single gate through which the VMM
 * reaches guest memory. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vmm.h"

int gmem_init(struct guest_mem *mem, uint64_t size)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
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

void gmem_destroy(struct guest_mem *mem)
{
	if (mem->base)
		munmap(mem->base, mem->size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
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
