/* The ELF closure reads what the dynamic loader would read, and nothing is
 * ever run: the program headers (PT_INTERP, PT_DYNAMIC, PT_LOAD) and the
 * dynamic section's DT_NEEDED, DT_RUNPATH and DT_RPATH strings. The file is
 * untrusted (it comes from a package or the user): every offset, size and
 * count is checked against the buffer before use, with overflow in mind. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image_int.h"

#define MAX_PHDRS 512
#define MAX_DYN	  4096

bool image_is_elf(const uint8_t *buf, size_t len)
{
	return len >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG);
}

/* [off, off + size) lies inside len bytes. */
static bool in_bounds(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

/* File offset of virtual address va through the PT_LOAD segments, or -1. */
static int64_t va_to_off(const Elf64_Phdr *ph, int n, uint64_t va, size_t len)
{
	for (int i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || va < ph[i].p_vaddr)
			continue;
		uint64_t d = va - ph[i].p_vaddr;
		if (d < ph[i].p_filesz && in_bounds(ph[i].p_offset, ph[i].p_filesz, len))
			return (int64_t)(ph[i].p_offset + d);
	}
	return -1;
}

/* A NUL-terminated string at strtab + off, inside [strtab, strtab + strsz). */
static char *dup_str(const uint8_t *buf, uint64_t strtab, uint64_t strsz, uint64_t off)
{
	if (off >= strsz)
		return NULL;
	const char *s = (const char *)buf + strtab + off;
	const char *end = memchr(s, '\0', strsz - off);
	if (!end)
		return NULL;
	return strdup(s);
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386:
		return "i386";
	case EM_ARM:
		return "arm";
	case EM_AARCH64:
		return "aarch64";
	case EM_RISCV:
		return "riscv";
	case EM_PPC64:
		return "ppc64";
	case EM_S390:
		return "s390";
	default:
		return "another machine";
	}
}

int image_elf_parse(const uint8_t *buf, size_t len, struct image_elf *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (!image_is_elf(buf, len)) {
		snprintf(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (len < EI_NIDENT || buf[EI_CLASS] != ELFCLASS64) {
		snprintf(err, errlen, "a 32-bit ELF, not x86-64");
		return -EXDEV;
	}
	if (len < sizeof(Elf64_Ehdr)) {
		snprintf(err, errlen, "truncated ELF header");
		return -ENOEXEC;
	}
	Elf64_Ehdr eh;
	memcpy(&eh, buf, sizeof(eh));
	if (buf[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "an ELF for %s (machine %u), not x86-64",
			 machine_name(eh.e_machine), eh.e_machine);
		return -EXDEV;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		snprintf(err, errlen, "an ELF of type %u, neither executable nor shared object",
			 eh.e_type);
		return -ENOEXEC;
	}
	if (eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    !in_bounds(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len)) {
		snprintf(err, errlen, "bad program header table");
		return -ENOEXEC;
	}
	int n = eh.e_phnum;
	Elf64_Phdr *ph = malloc((size_t)n * sizeof(*ph));
	if (!ph) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(ph, buf + eh.e_phoff, (size_t)n * sizeof(*ph));
	int r = -ENOEXEC;
	const Elf64_Phdr *dyn = NULL;
	for (int i = 0; i < n; i++) {
		if (ph[i].p_type == PT_INTERP) {
			if (!in_bounds(ph[i].p_offset, ph[i].p_filesz, len) || ph[i].p_filesz < 2 ||
			    ph[i].p_filesz > sizeof(e->interp) ||
			    buf[ph[i].p_offset + ph[i].p_filesz - 1] != '\0') {
				snprintf(err, errlen, "bad PT_INTERP");
				goto out;
			}
			memcpy(e->interp, buf + ph[i].p_offset, ph[i].p_filesz);
			if (strlen(e->interp) == 0 || e->interp[0] != '/') {
				snprintf(err, errlen, "bad PT_INTERP");
				goto out;
			}
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = &ph[i];
		}
	}
	e->executable = eh.e_type == ET_EXEC || e->interp[0];
	if (!dyn) {
		r = 0;
		goto out;
	}
	e->dynamic = true;
	if (!in_bounds(dyn->p_offset, dyn->p_filesz, len)) {
		snprintf(err, errlen, "PT_DYNAMIC lies outside the file");
		goto out;
	}
	size_t nd = dyn->p_filesz / sizeof(Elf64_Dyn);
	if (nd > MAX_DYN)
		nd = MAX_DYN;
	uint64_t strtab_va = 0, strsz = 0;
	bool have_strtab = false;
	for (size_t i = 0; i < nd; i++) {
		Elf64_Dyn d;
		memcpy(&d, buf + dyn->p_offset + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag == DT_STRTAB) {
			strtab_va = d.d_un.d_ptr;
			have_strtab = true;
		} else if (d.d_tag == DT_STRSZ) {
			strsz = d.d_un.d_val;
		}
	}
	if (!have_strtab) {
		r = 0; /* a dynamic section with no strings needs nothing */
		goto out;
	}
	int64_t strtab = va_to_off(ph, n, strtab_va, len);
	if (strtab < 0 || !in_bounds((uint64_t)strtab, strsz, len)) {
		snprintf(err, errlen, "DT_STRTAB lies outside the file");
		goto out;
	}
	for (size_t i = 0; i < nd; i++) {
		Elf64_Dyn d;
		memcpy(&d, buf + dyn->p_offset + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		char **slot = NULL;
		if (d.d_tag == DT_NEEDED) {
			if (e->nr_needed == IMAGE_MAX_NEEDED) {
				snprintf(err, errlen, "more than %d DT_NEEDED entries",
					 IMAGE_MAX_NEEDED);
				goto out;
			}
			slot = &e->needed[e->nr_needed];
		} else if (d.d_tag == DT_RUNPATH && !e->runpath) {
			slot = &e->runpath;
		} else if (d.d_tag == DT_RPATH && !e->rpath) {
			slot = &e->rpath;
		} else {
			continue;
		}
		*slot = dup_str(buf, (uint64_t)strtab, strsz, d.d_un.d_val);
		if (!*slot || !**slot || strchr(*slot, '\n') || strchr(*slot, '\t')) {
			free(*slot);
			*slot = NULL;
			snprintf(err, errlen, "bad string in the dynamic section");
			goto out;
		}
		if (d.d_tag == DT_NEEDED)
			e->nr_needed++;
	}
	r = 0;
out:
	free(ph);
	if (r)
		image_elf_free(e);
	return r;
}

void image_elf_free(struct image_elf *e)
{
	for (int i = 0; i < e->nr_needed; i++)
		free(e->needed[i]);
	free(e->runpath);
	free(e->rpath);
	e->nr_needed = 0;
	e->runpath = e->rpath = NULL;
}
