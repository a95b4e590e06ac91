/* Identity page tables for 64-bit guests. 2 MiB pages (1 GiB pages are not
 * offered by every KVM, ours included), except the first 2 MiB which use
 * 4 KiB pages so that page 0 can stay unmapped and catch null pointers. */
#include <errno.h>
#include <string.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define PTE_P	 0x1ull
#define PTE_RW	 0x2ull
#define PTE_US	 0x4ull
#define PTE_PS	 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define PAGE	 4096ull
#define MiB2	 (2ull << 20)
#define GiB	 (1ull << 30)

int64_t x86_build_page_tables(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t map_size,
			      uint64_t limit_gpa)
{
	if (map_size == 0 || map_size > X86_MAX_MAPPED || pml4_gpa % PAGE)
		return -EINVAL;
	uint64_t nr_pd = (map_size + GiB - 1) / GiB;
	uint64_t pdpt_gpa = pml4_gpa + PAGE, pt_gpa = pml4_gpa + 2 * PAGE,
		 pd_gpa = pml4_gpa + 3 * PAGE;
	uint64_t end = pd_gpa + nr_pd * PAGE;
	if (end > limit_gpa)
		return -E2BIG;
	uint64_t *pml4 = gmem_ptr(mem, pml4_gpa, PAGE), *pdpt = gmem_ptr(mem, pdpt_gpa, PAGE);
	uint64_t *pt = gmem_ptr(mem, pt_gpa, PAGE), *pd = gmem_ptr(mem, pd_gpa, nr_pd * PAGE);
	if (!pml4 || !pdpt || !pt || !pd)
		return -EFAULT;
	const uint64_t flags = PTE_P | PTE_RW | PTE_US;
	memset(pml4, 0, PAGE);
	memset(pdpt, 0, PAGE);
	pml4[0] = pdpt_gpa | flags;
	for (uint64_t i = 0; i < nr_pd; i++)
		pdpt[i] = (pd_gpa + i * PAGE) | flags;
	uint64_t nr_2m = (map_size + MiB2 - 1) / MiB2;
	memset(pd, 0, nr_pd * PAGE);
	pd[0] = pt_gpa | flags;
	for (uint64_t i = 1; i < nr_2m; i++)
		pd[i] = (i * MiB2) | flags | PTE_PS;
	pt[0] = 0; /* page 0: not present */
	for (uint64_t i = 1; i < 512; i++)
		pt[i] = (i * PAGE) | flags;
	return (int64_t)end;
}

bool x86_translate(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t va, uint64_t *pa,
		   bool *user, bool *writable)
{
	uint64_t table = pml4_gpa;
	bool us = true, rw = true;
	for (int level = 3; level >= 0; level--) {
		unsigned idx = (va >> (12 + 9 * level)) & 511;
		const uint64_t *e = gmem_ptr(mem, table + idx * 8, 8);
		if (!e || !(*e & PTE_P))
			return false;
		us = us && (*e & PTE_US);
		rw = rw && (*e & PTE_RW);
		if (level > 0 && level < 3 && (*e & PTE_PS)) {
			uint64_t page = 1ull << (12 + 9 * level);
			*pa = (*e & PTE_ADDR & ~(page - 1)) | (va & (page - 1));
			goto out;
		}
		table = *e & PTE_ADDR;
		if (level == 0)
			*pa = table | (va & (PAGE - 1));
	}
out:
	if (user)
		*user = us;
	if (writable)
		*writable = rw;
	return true;
}

int x86_page_restrict(const struct guest_mem *mem, uint64_t pml4_gpa, uint64_t gpa, bool unmap,
		      uint64_t spare_pt_gpa)
{
	uint64_t *pml4 = gmem_ptr(mem, pml4_gpa, PAGE);
	if (!pml4 || !(pml4[gpa >> 39 & 511] & PTE_P))
		return -EFAULT;
	uint64_t *pdpt = gmem_ptr(mem, pml4[gpa >> 39 & 511] & PTE_ADDR, PAGE);
	if (!pdpt || !(pdpt[gpa >> 30 & 511] & PTE_P))
		return -EFAULT;
	uint64_t *pd = gmem_ptr(mem, pdpt[gpa >> 30 & 511] & PTE_ADDR, PAGE);
	uint64_t *pde = pd ? &pd[gpa >> 21 & 511] : NULL;
	if (!pde || !(*pde & PTE_P))
		return -EFAULT;
	if (*pde & PTE_PS) { /* split the 2 MiB page into 4 KiB ones */
		uint64_t *pt = spare_pt_gpa ? gmem_ptr(mem, spare_pt_gpa, PAGE) : NULL;
		if (!pt)
			return -ENOSPC;
		uint64_t base = *pde & PTE_ADDR & ~(MiB2 - 1),
			 flags = *pde & (PTE_P | PTE_RW | PTE_US);
		for (uint64_t i = 0; i < 512; i++)
			pt[i] = (base + i * PAGE) | flags;
		*pde = spare_pt_gpa | flags;
	}
	uint64_t *pt = gmem_ptr(mem, *pde & PTE_ADDR, PAGE);
	if (!pt)
		return -EFAULT;
	uint64_t *pte = &pt[gpa >> 12 & 511];
	*pte = unmap ? 0 : *pte & ~PTE_US;
	return 0;
}
