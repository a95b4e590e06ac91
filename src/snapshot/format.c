/* The snapshot file format (snapshot.h): header checks, the state record
 * parser and the helpers that build records. Everything read here comes
 * from a file or a socket and is treated as hostile: lengths and counts are
 * checked before use, nothing is trusted for alignment, and every failure
 * says what was wrong in one line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "snapshot/snapshot.h"

uint64_t snap_hash(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

void snap_put_rec(struct wbuf *b, uint32_t type, uint32_t version, uint64_t len)
{
	struct snap_rec r = {.type = type, .version = version, .len = len};
	wbuf_put(b, &r, sizeof(r));
}

void snap_fill_header(struct snap_header *h, const void *state, uint64_t state_len,
		      uint64_t mem_size)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, SNAP_MAGIC, 8);
	h->version = SNAP_VERSION;
	h->header_size = SNAP_HEADER_SIZE;
	h->state_off = SNAP_HEADER_SIZE;
	h->state_len = state_len;
	h->state_hash = snap_hash(state, state_len);
	h->mem_off = (SNAP_HEADER_SIZE + state_len + 4095) & ~4095ull;
	h->mem_size = mem_size;
	h->header_hash = snap_hash(h, offsetof(struct snap_header, header_hash));
}

int snap_check_header(const struct snap_header *h, uint64_t file_size, char *err, size_t errlen)
{
	if (file_size < sizeof(*h)) {
		snprintf(err, errlen, "not a Wisp snapshot: file of %llu bytes is too short",
			 (unsigned long long)file_size);
		return file_size && !memcmp(h->magic, SNAP_MAGIC, file_size < 8 ? file_size : 8)
			       ? -ENODATA
			       : -EINVAL;
	}
	if (memcmp(h->magic, SNAP_MAGIC, 8)) {
		snprintf(err, errlen, "not a Wisp snapshot (bad magic)");
		return -EINVAL;
	}
	if (h->header_hash != snap_hash(h, offsetof(struct snap_header, header_hash))) {
		snprintf(err, errlen, "snapshot header is corrupted (checksum mismatch)");
		return -EINVAL;
	}
	if (h->version != SNAP_VERSION) {
		snprintf(err, errlen,
			 "snapshot format version %u, this Wisp reads version %u (made by a %s "
			 "Wisp)",
			 h->version, SNAP_VERSION, h->version > SNAP_VERSION ? "newer" : "older");
		return -EPROTO;
	}
	if (h->header_size != SNAP_HEADER_SIZE || h->state_off != SNAP_HEADER_SIZE ||
	    h->state_len == 0 || h->state_len > SNAP_STATE_MAX || h->mem_off % 4096 ||
	    h->mem_off < h->state_off + h->state_len || h->mem_size == 0 || h->mem_size % 4096 ||
	    h->mem_size > (1ull << 46) || h->mem_off > UINT64_MAX - h->mem_size) {
		snprintf(err, errlen,
			 "snapshot header is inconsistent (sections overlap or "
			 "have impossible sizes)");
		return -EINVAL;
	}
	if (file_size < h->mem_off + h->mem_size) {
		snprintf(err, errlen,
			 "snapshot is truncated: %llu bytes, the header says %llu (state %llu "
			 "bytes, memory %llu MiB)",
			 (unsigned long long)file_size,
			 (unsigned long long)(h->mem_off + h->mem_size),
			 (unsigned long long)h->state_len, (unsigned long long)(h->mem_size >> 20));
		return -ENODATA;
	}
	return 0;
}

void snap_image_free(struct snap_image *img)
{
	free(img->vcpus);
	img->vcpus = NULL;
}

/* The record reader: a cursor over the untrusted buffer. */
struct cursor {
	const uint8_t *p;
	size_t left;
};

static int bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "snapshot state is malformed: %s", what);
	return -EINVAL;
}

static int parse_vcpu(const uint8_t *p, uint64_t len, uint32_t version, struct snap_image *img,
		      char *err, size_t errlen)
{
	if (version != 1)
		return bad(err, errlen, "vCPU record of an unknown version");
	if (len < sizeof(struct snap_vcpu))
		return bad(err, errlen, "vCPU record too short");
	struct snap_vcpu v;
	memcpy(&v, p, sizeof(v));
	if (v.id >= (uint32_t)img->nr_vcpus)
		return bad(err, errlen, "vCPU id beyond the VM's vCPU count");
	struct snap_vcpu_img *vi = &img->vcpus[v.id];
	if (vi->msrs || vi->cpuid || vi->xsave || vi->v.flags & (1u << 31))
		return bad(err, errlen, "vCPU record given twice");
	if (v.flags & ~(SNAP_VCPU_XSAVE | SNAP_VCPU_XCRS | SNAP_VCPU_LAPIC | SNAP_VCPU_POLL))
		return bad(err, errlen, "vCPU record with unknown flags");
	if (v.nr_msrs > SNAP_MAX_MSRS || v.nr_cpuid > SNAP_MAX_CPUID ||
	    v.xsave_len > SNAP_XSAVE_MAX)
		return bad(err, errlen, "vCPU record with too many MSRs or CPUID entries");
	if (!(v.flags & SNAP_VCPU_XSAVE) && v.xsave_len)
		return bad(err, errlen, "vCPU record with XSAVE data but no XSAVE flag");
	if ((v.flags & SNAP_VCPU_XSAVE) && v.xsave_len < sizeof(struct kvm_xsave))
		return bad(err, errlen, "vCPU XSAVE area too small");
	uint64_t xs = ((uint64_t)v.xsave_len + 7) & ~7ull;
	uint64_t need = sizeof(v) + xs + (uint64_t)v.nr_msrs * sizeof(struct kvm_msr_entry) +
			(uint64_t)v.nr_cpuid * sizeof(struct kvm_cpuid_entry2);
	if (need != len)
		return bad(err, errlen, "vCPU record length does not match its contents");
	if (v.nr_cpuid == 0)
		return bad(err, errlen, "vCPU record without CPUID");
	vi->v = v;
	vi->v.flags |= 1u << 31; /* seen (cleared once all are parsed) */
	vi->xsave = v.xsave_len ? p + sizeof(v) : NULL;
	vi->msrs = p + sizeof(v) + xs;
	vi->cpuid = vi->msrs + (uint64_t)v.nr_msrs * sizeof(struct kvm_msr_entry);
	return 0;
}

/* Where the parser stands in the state section, and what it has seen. */
struct state_parse {
	struct cursor c;
	uint64_t mem_size;
	bool have_vm, have_map, end;
};

/* Take the next record off the cursor: its header, then its padded payload. */
static int take_record(struct state_parse *ps, struct snap_rec *rec, const uint8_t **p, char *err,
		       size_t errlen)
{
	if (ps->c.left < sizeof(*rec))
		return bad(err, errlen, "state ends without an END record");
	memcpy(rec, ps->c.p, sizeof(*rec));
	ps->c.p += sizeof(*rec);
	ps->c.left -= sizeof(*rec);
	uint64_t padded = (rec->len + 7) & ~7ull;
	if (rec->len > ps->c.left || padded > ps->c.left)
		return bad(err, errlen, "a record runs past the end of the state");
	*p = ps->c.p;
	ps->c.p += padded;
	ps->c.left -= padded;
	if (!ps->have_vm && rec->type != SNAP_REC_VM)
		return bad(err, errlen, "first record is not the VM record");
	return 0;
}

/* Check that every memory region of the VM record lies inside guest RAM. */
static int check_vm_regions(const struct snap_vm *vm, uint64_t mem_size, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < vm->nr_regions; i++) {
		uint64_t o = vm->regions[i].fd_offset, s = vm->regions[i].size;
		if (s == 0 || o > mem_size || s > mem_size - o ||
		    vm->regions[i].gpa + s < vm->regions[i].gpa)
			return bad(err, errlen, "memory region outside guest RAM");
	}
	return 0;
}

/* The VM record: checked against the header, then the vCPU table is allocated. */
static int parse_vm(struct state_parse *ps, const struct snap_rec *rec, const uint8_t *p,
		    struct snap_image *img, char *err, size_t errlen)
{
	if (ps->have_vm)
		return bad(err, errlen, "VM record given twice");
	if (rec->version != 1 || rec->len != sizeof(struct snap_vm))
		return bad(err, errlen, "VM record of an unknown version or size");
	memcpy(&img->vm, p, sizeof(img->vm));
	if (img->vm.mem_size != ps->mem_size)
		return bad(err, errlen, "VM record and header disagree on memory size");
	if (img->vm.nr_vcpus < 1 || img->vm.nr_vcpus > WISP_MAX_VCPUS)
		return bad(err, errlen, "vCPU count out of range");
	if (img->vm.flags &
	    ~(SNAP_VM_IRQCHIP | SNAP_VM_SPLIT_IRQCHIP | SNAP_VM_RESET_STOPS | SNAP_VM_CLOCK))
		return bad(err, errlen, "VM record with unknown flags");
	if (img->vm.nr_regions < 1 || img->vm.nr_regions > WISP_MAX_MEM_REGIONS)
		return bad(err, errlen, "memory region count out of range");
	int r = check_vm_regions(&img->vm, ps->mem_size, err, errlen);
	if (r)
		return r;
	img->nr_vcpus = (int)img->vm.nr_vcpus;
	img->vcpus = calloc((size_t)img->nr_vcpus, sizeof(*img->vcpus));
	if (!img->vcpus) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ps->have_vm = true;
	return 0;
}

/* The configuration record: once, at most 64 KiB, NUL-terminated. */
static int parse_config(const struct snap_rec *rec, const uint8_t *p, struct snap_image *img,
			char *err, size_t errlen)
{
	if (img->config || rec->version != 1 || rec->len > 65536 ||
	    (rec->len && p[rec->len - 1] != 0))
		return bad(err, errlen, "bad configuration record");
	img->config = (const char *)p;
	img->config_len = rec->len;
	return 0;
}

/* The irqchip record: once, only for a VM with a full irqchip, chips in order. */
static int parse_irqchip(const struct snap_rec *rec, const uint8_t *p, struct snap_image *img,
			 char *err, size_t errlen)
{
	if (img->has_irqchip || rec->version != 1 || rec->len != sizeof(struct snap_irqchip) ||
	    !(img->vm.flags & SNAP_VM_IRQCHIP))
		return bad(err, errlen, "bad irqchip record");
	memcpy(&img->irqchip, p, sizeof(img->irqchip));
	for (int i = 0; i < 3; i++)
		if (img->irqchip.chip[i].chip_id != (uint32_t)i)
			return bad(err, errlen, "irqchip record out of order");
	img->has_irqchip = true;
	return 0;
}

/* A device record: appended to the device table, named and in position. */
static int parse_device(const struct snap_rec *rec, const uint8_t *p, struct snap_image *img,
			char *err, size_t errlen)
{
	if (rec->version != 1 || rec->len < sizeof(struct snap_dev))
		return bad(err, errlen, "bad device record");
	if (img->nr_devices == SNAP_MAX_DEVICES)
		return bad(err, errlen, "too many devices");
	struct snap_dev_img *d = &img->devices[img->nr_devices];
	memcpy(&d->d, p, sizeof(d->d));
	if (!memchr(d->d.name, 0, sizeof(d->d.name)) || !d->d.name[0] ||
	    d->d.index != (uint32_t)img->nr_devices)
		return bad(err, errlen, "device record with a bad name or position");
	d->data = p + sizeof(d->d);
	d->len = rec->len - sizeof(d->d);
	img->nr_devices++;
	return 0;
}

/* The memory map record: once, page-aligned extents in order inside guest RAM. */
static int parse_memmap(struct state_parse *ps, const struct snap_rec *rec, const uint8_t *p,
			struct snap_image *img, char *err, size_t errlen)
{
	if (ps->have_map || rec->version != 1 || rec->len % sizeof(struct snap_extent))
		return bad(err, errlen, "bad memory map record");
	img->extents = p;
	img->nr_extents = rec->len / sizeof(struct snap_extent);
	uint64_t prev_end = 0, mem_size = ps->mem_size;
	for (uint64_t i = 0; i < img->nr_extents; i++) {
		struct snap_extent e;
		memcpy(&e, p + i * sizeof(e), sizeof(e));
		if (e.off % 4096 || e.len % 4096 || e.len == 0 || e.off < prev_end ||
		    e.off > mem_size || e.len > mem_size - e.off)
			return bad(err, errlen, "memory map extent out of range or out of order");
		prev_end = e.off + e.len;
	}
	ps->have_map = true;
	return 0;
}

/* Read one record and hand it to the parser for its type. */
static int parse_record(struct state_parse *ps, struct snap_image *img, char *err, size_t errlen)
{
	struct snap_rec rec;
	const uint8_t *p;
	int r = take_record(ps, &rec, &p, err, errlen);
	if (r)
		return r;
	switch (rec.type) {
	case SNAP_REC_VM:
		return parse_vm(ps, &rec, p, img, err, errlen);
	case SNAP_REC_CONFIG:
		return parse_config(&rec, p, img, err, errlen);
	case SNAP_REC_VCPU:
		return parse_vcpu(p, rec.len, rec.version, img, err, errlen);
	case SNAP_REC_IRQCHIP:
		return parse_irqchip(&rec, p, img, err, errlen);
	case SNAP_REC_DEVICE:
		return parse_device(&rec, p, img, err, errlen);
	case SNAP_REC_MEMMAP:
		return parse_memmap(ps, &rec, p, img, err, errlen);
	case SNAP_REC_END:
		if (rec.len != 0)
			return bad(err, errlen, "END record with a payload");
		ps->end = true;
		return 0;
	default:
		snprintf(err, errlen,
			 "snapshot state has a record of unknown type %u (made by a newer "
			 "Wisp?)",
			 rec.type);
		return -EPROTO;
	}
}

/* After END: nothing trails it, and every record that must be there was. */
static int check_state_complete(const struct state_parse *ps, struct snap_image *img, char *err,
				size_t errlen)
{
	if (ps->c.left)
		return bad(err, errlen, "bytes after the END record");
	if (!ps->have_map)
		return bad(err, errlen, "no memory map record");
	for (int i = 0; i < img->nr_vcpus; i++) {
		if (!(img->vcpus[i].v.flags & (1u << 31)))
			return bad(err, errlen, "a vCPU has no record");
		img->vcpus[i].v.flags &= ~(1u << 31);
	}
	if ((img->vm.flags & SNAP_VM_IRQCHIP) && !img->has_irqchip)
		return bad(err, errlen, "irqchip state missing");
	return 0;
}

int snap_parse_state(const uint8_t *buf, size_t len, uint64_t mem_size, struct snap_image *img,
		     char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	struct state_parse ps = {.c = {buf, len}, .mem_size = mem_size};
	int r = 0;
	while (!r && !ps.end)
		r = parse_record(&ps, img, err, errlen);
	if (!r)
		r = check_state_complete(&ps, img, err, errlen);
	if (r)
		snap_image_free(img);
	return r;
}
