/* The snapshot format without KVM: header checks against the file size,
 * and the state parser against malformed records (sizes, counts, ranges,
 * order, duplicates, unknown types); a well-formed state round-trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/snapshot.h"

#define MEM (32ull << 20)

/* A minimal valid state: VM, one vCPU (2 MSRs, 1 CPUID entry), one
 * device, a memory map with one extent, END. */
static void build(struct wbuf *b, uint32_t nr_vcpus)
{
	struct snap_vm vm = {.mem_size = MEM, .nr_vcpus = nr_vcpus, .nr_regions = 1};
	vm.regions[0].size = MEM;
	snap_put_rec(b, SNAP_REC_VM, 1, sizeof(vm));
	wbuf_put(b, &vm, sizeof(vm));
	snap_put_rec(b, SNAP_REC_CONFIG, 1, 9);
	wbuf_put(b, "wisp-vmm", 9);
	wbuf_align(b, 8);
	struct snap_dev d = {.name = "rng-device", .index = 0, .dev_version = 1};
	snap_put_rec(b, SNAP_REC_DEVICE, 1, sizeof(d) + 4);
	wbuf_put(b, &d, sizeof(d));
	wbuf_put(b, "abcd", 4);
	wbuf_align(b, 8);
	for (uint32_t i = 0; i < nr_vcpus; i++) {
		struct snap_vcpu v = {.id = i, .nr_msrs = 2, .nr_cpuid = 1};
		struct kvm_msr_entry m[2] = {{.index = 0x10, .data = 7}, {.index = 0x174}};
		struct kvm_cpuid_entry2 c = {.function = 1};
		snap_put_rec(b, SNAP_REC_VCPU, 1, sizeof(v) + sizeof(m) + sizeof(c));
		wbuf_put(b, &v, sizeof(v));
		wbuf_put(b, m, sizeof(m));
		wbuf_put(b, &c, sizeof(c));
		wbuf_align(b, 8);
	}
	struct snap_extent e = {.off = 0x100000, .len = 0x2000};
	snap_put_rec(b, SNAP_REC_MEMMAP, 1, sizeof(e));
	wbuf_put(b, &e, sizeof(e));
	snap_put_rec(b, SNAP_REC_END, 1, 0);
}

static int parse(const struct wbuf *b, char *err)
{
	struct snap_image img;
	int r = snap_parse_state(b->p, b->len, MEM, &img, err, 256);
	if (!r)
		snap_image_free(&img);
	return r;
}

static void test_valid(void **state)
{
	(void)state;
	struct wbuf b = {0};
	build(&b, 2);
	struct snap_image img;
	char err[256];
	assert_int_equal(snap_parse_state(b.p, b.len, MEM, &img, err, sizeof(err)), 0);
	assert_int_equal(img.nr_vcpus, 2);
	assert_int_equal(img.vcpus[1].v.id, 1);
	assert_int_equal(img.vcpus[0].v.nr_msrs, 2);
	struct kvm_msr_entry m;
	memcpy(&m, img.vcpus[0].msrs, sizeof(m));
	assert_int_equal(m.data, 7);
	assert_int_equal(img.nr_devices, 1);
	assert_string_equal(img.devices[0].d.name, "rng-device");
	assert_int_equal(img.devices[0].len, 4);
	assert_memory_equal(img.devices[0].data, "abcd", 4);
	assert_int_equal(img.nr_extents, 1);
	assert_string_equal(img.config, "wisp-vmm");
	snap_image_free(&img);
	/* Every truncation of a valid state is refused, none crashes. */
	for (size_t n = 0; n < b.len; n++) {
		assert_int_not_equal(snap_parse_state(b.p, n, MEM, &img, err, sizeof(err)), 0);
	}
	wbuf_free(&b);
}

/* Field at `off` of the n-th record of `type` in b. */
static uint8_t *rec(struct wbuf *b, uint32_t type, int nth)
{
	size_t at = 0;
	while (at + sizeof(struct snap_rec) <= b->len) {
		struct snap_rec r;
		memcpy(&r, b->p + at, sizeof(r));
		if (r.type == type && nth-- == 0)
			return b->p + at;
		at += sizeof(r) + ((r.len + 7) & ~7ull);
	}
	fail();
	return NULL;
}

static void corrupt(void (*mutate)(struct wbuf *), const char *want)
{
	struct wbuf b = {0};
	build(&b, 2);
	mutate(&b);
	char err[256] = "";
	assert_int_not_equal(parse(&b, err), 0);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	wbuf_free(&b);
}

static void m_vcpu_id(struct wbuf *b)
{
	uint32_t id = 5;
	memcpy(rec(b, SNAP_REC_VCPU, 1) + sizeof(struct snap_rec), &id, 4);
}
static void m_vcpu_dup(struct wbuf *b)
{
	uint32_t id = 0;
	memcpy(rec(b, SNAP_REC_VCPU, 1) + sizeof(struct snap_rec), &id, 4);
}
static void m_msr_count(struct wbuf *b)
{
	uint32_t n = 3;
	memcpy(rec(b, SNAP_REC_VCPU, 0) + sizeof(struct snap_rec) +
		       offsetof(struct snap_vcpu, nr_msrs),
	       &n, 4);
}
static void m_msr_huge(struct wbuf *b)
{
	uint32_t n = 0x40000000;
	memcpy(rec(b, SNAP_REC_VCPU, 0) + sizeof(struct snap_rec) +
		       offsetof(struct snap_vcpu, nr_msrs),
	       &n, 4);
}
static void m_rec_len(struct wbuf *b)
{
	uint64_t len = 1ull << 62;
	memcpy(rec(b, SNAP_REC_DEVICE, 0) + 8, &len, 8);
}
static void m_type(struct wbuf *b)
{
	uint32_t t = 99;
	memcpy(rec(b, SNAP_REC_DEVICE, 0), &t, 4);
}
static void m_extent(struct wbuf *b)
{
	uint64_t off = MEM;
	memcpy(rec(b, SNAP_REC_MEMMAP, 0) + sizeof(struct snap_rec), &off, 8);
}
static void m_vcpus(struct wbuf *b)
{
	uint32_t n = 3; /* the third has no record */
	memcpy(rec(b, SNAP_REC_VM, 0) + sizeof(struct snap_rec) +
		       offsetof(struct snap_vm, nr_vcpus),
	       &n, 4);
}
static void m_region(struct wbuf *b)
{
	uint64_t size = MEM + 4096;
	memcpy(rec(b, SNAP_REC_VM, 0) + sizeof(struct snap_rec) +
		       offsetof(struct snap_vm, regions[0].size),
	       &size, 8);
}
static void m_memsize(struct wbuf *b)
{
	uint64_t size = MEM * 2;
	memcpy(rec(b, SNAP_REC_VM, 0) + sizeof(struct snap_rec), &size, 8);
}
static void m_name(struct wbuf *b)
{
	memset(rec(b, SNAP_REC_DEVICE, 0) + sizeof(struct snap_rec), 'x', SNAP_NAME_MAX);
}
static void m_config(struct wbuf *b)
{
	uint8_t *p = rec(b, SNAP_REC_CONFIG, 0) + sizeof(struct snap_rec);
	p[8] = 'x'; /* no NUL */
}
static void m_trailing(struct wbuf *b)
{
	wbuf_put(b, "12345678", 8);
}

static void test_malformed(void **state)
{
	(void)state;
	corrupt(m_vcpu_id, "vCPU id beyond");
	corrupt(m_vcpu_dup, "given twice");
	corrupt(m_msr_count, "length does not match");
	corrupt(m_msr_huge, "too many MSRs");
	corrupt(m_rec_len, "runs past the end");
	corrupt(m_type, "unknown type 99");
	corrupt(m_extent, "extent out of range");
	corrupt(m_vcpus, "a vCPU has no record");
	corrupt(m_region, "region outside guest RAM");
	corrupt(m_memsize, "disagree on memory size");
	corrupt(m_name, "bad name");
	corrupt(m_config, "configuration record");
	corrupt(m_trailing, "after the END record");
}

static void test_header(void **state)
{
	(void)state;
	struct wbuf b = {0};
	build(&b, 1);
	struct snap_header h;
	snap_fill_header(&h, b.p, b.len, MEM);
	uint64_t size = h.mem_off + MEM;
	char err[256];
	assert_int_equal(snap_check_header(&h, size, err, sizeof(err)), 0);
	assert_int_equal(snap_check_header(&h, size - 1, err, sizeof(err)), -ENODATA);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(snap_check_header(&h, 10, err, sizeof(err)), -ENODATA);
	struct snap_header v = h;
	v.version = 2;
	v.header_hash = snap_hash(&v, offsetof(struct snap_header, header_hash));
	assert_int_equal(snap_check_header(&v, size, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "made by a newer Wisp"));
	v = h;
	v.state_len++;
	assert_int_equal(snap_check_header(&v, size, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "checksum"));
	v = h;
	v.mem_off = 4096; /* overlaps the state, checksum made right */
	v.header_hash = snap_hash(&v, offsetof(struct snap_header, header_hash));
	assert_int_equal(snap_check_header(&v, size, err, sizeof(err)), -EINVAL);
	v = h;
	memcpy(v.magic, "WISPSNAQ", 8);
	assert_int_equal(snap_check_header(&v, size, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad magic"));
	wbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
