/* ELF64 loader for unikernels and PVH kernels. The file is untrusted input:
 * every offset and size is checked against the buffer before it is used,
 * written so that no sum can overflow. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/x86.h"
#include "vmm/vmm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* True if [off, off+len) lies inside a buffer of `size` bytes. */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ull;
}

/* Walk the notes of one PT_NOTE segment, picking out the two we know. */
static int parse_notes(const uint8_t *p, uint64_t len, struct elf_image *img, char *err,
		       size_t errlen)
{
	uint64_t off = 0;
	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, p + off, sizeof(nh));
		off += sizeof(nh);
		uint64_t name_len = align4(nh.n_namesz), desc_len = align4(nh.n_descsz);
		if (name_len > len - off || desc_len > len - off - name_len) {
			snprintf(err, errlen, "ELF note runs past its segment");
			return -ENOEXEC;
		}
		const char *name = (const char *)p + off;
		const uint8_t *desc = p + off + name_len;
		if (nh.n_namesz == sizeof(WISP_NOTE_NAME) &&
		    !memcmp(name, WISP_NOTE_NAME, sizeof(WISP_NOTE_NAME)) &&
		    nh.n_type == WISP_NOTE_TYPE) {
			if (nh.n_descsz < sizeof(struct wisp_note)) {
				snprintf(err, errlen, "Wisp note too short (%u bytes)",
					 nh.n_descsz);
				return -ENOEXEC;
			}
			memcpy(&img->wisp, desc, sizeof(img->wisp));
			img->has_wisp_note = true;
		} else if (nh.n_namesz == 4 && !memcmp(name, "Xen", 4) &&
			   nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint64_t v = 0;
			if (nh.n_descsz == 4) {
				uint32_t v32;
				memcpy(&v32, desc, 4);
				v = v32;
			} else if (nh.n_descsz == 8) {
				memcpy(&v, desc, 8);
			} else {
				snprintf(err, errlen, "PVH entry note has a bad size (%u bytes)",
					 nh.n_descsz);
				return -ENOEXEC;
			}
			img->pvh_entry = v;
			img->has_pvh_note = true;
		}
		off += name_len + desc_len;
	}
	return 0;
}

int elf_parse(const uint8_t *buf, size_t size, struct elf_image *img, char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	Elf64_Ehdr eh;
	if (size < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG)) {
		snprintf(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (size < sizeof(eh)) {
		snprintf(err, errlen, "truncated ELF header");
		return -ENOEXEC;
	}
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
		snprintf(err, errlen, "not a 64-bit ELF");
		return -ENOEXEC;
	}
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "not an x86-64 ELF (machine %u)", eh.e_machine);
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC) {
		snprintf(err, errlen, "not an executable ELF (type %u; want ET_EXEC)", eh.e_type);
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
	    !in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), size)) {
		snprintf(err, errlen, "bad or missing program headers");
		return -ENOEXEC;
	}
	img->entry = eh.e_entry;
	img->lowest = UINT64_MAX;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, buf + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE) {
			if (!in_file(ph.p_offset, ph.p_filesz, size)) {
				snprintf(err, errlen, "note segment %d lies outside the file", i);
				return -ENOEXEC;
			}
			int r = parse_notes(buf + ph.p_offset, ph.p_filesz, img, err, errlen);
			if (r)
				return r;
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (!in_file(ph.p_offset, ph.p_filesz, size)) {
			snprintf(err, errlen, "segment %d: file data lies outside the file", i);
			return -ENOEXEC;
		}
		if (ph.p_filesz > ph.p_memsz) {
			snprintf(err, errlen, "segment %d: file size larger than memory size", i);
			return -ENOEXEC;
		}
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr) {
			snprintf(err, errlen, "segment %d: wraps around the address space", i);
			return -ENOEXEC;
		}
		if (img->nr_segments == ELF_MAX_SEGMENTS) {
			snprintf(err, errlen, "more than %d loadable segments", ELF_MAX_SEGMENTS);
			return -ENOEXEC;
		}
		for (int j = 0; j < img->nr_segments; j++) {
			const struct elf_segment *s = &img->seg[j];
			if (ph.p_paddr < s->paddr + s->memsz &&
			    s->paddr < ph.p_paddr + ph.p_memsz) {
				snprintf(err, errlen, "loadable segments overlap (at 0x%llx)",
					 (unsigned long long)ph.p_paddr);
				return -ENOEXEC;
			}
		}
		img->seg[img->nr_segments++] =
			(struct elf_segment){ph.p_paddr, ph.p_memsz, ph.p_offset, ph.p_filesz};
		if (ph.p_paddr < img->lowest)
			img->lowest = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > img->highest)
			img->highest = ph.p_paddr + ph.p_memsz;
	}
	if (img->nr_segments == 0) {
		snprintf(err, errlen, "no loadable segments");
		return -ENOEXEC;
	}
	return 0;
}

int elf_load(const struct elf_image *img, const uint8_t *buf, const struct guest_mem *mem,
	     uint64_t min_gpa, char *err, size_t errlen)
{
	for (int i = 0; i < img->nr_segments; i++) {
		const struct elf_segment *s = &img->seg[i];
		if (s->paddr < min_gpa) {
			snprintf(err, errlen,
				 "segment at 0x%llx overlaps the boot structures below 0x%llx",
				 (unsigned long long)s->paddr, (unsigned long long)min_gpa);
			return -EINVAL;
		}
		uint8_t *dst = gmem_ptr(mem, s->paddr, s->memsz);
		if (!dst) {
			snprintf(err, errlen,
				 "segment 0x%llx-0x%llx lies outside guest RAM (%llu MiB); try a "
				 "larger --mem",
				 (unsigned long long)s->paddr,
				 (unsigned long long)(s->paddr + s->memsz),
				 (unsigned long long)(mem->size >> 20));
			return -E2BIG;
		}
		memcpy(dst, buf + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}
