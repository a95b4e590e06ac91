/* Fuzz target: the snapshot file's header checks and state parser, which
 * restore and migration receivers run on untrusted bytes. The input is a
 * state section (what snap_parse_state reads behind the checksum, which a
 * crafted file can always make valid); its first bytes double as a header
 * for snap_check_header. Parsed images are walked the way a restore walks
 * them, so that ASan sees any out-of-bounds pointer the parser hands out. */
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[WISP_ERRLEN];
	struct snap_header h;
	memset(&h, 0, sizeof(h));
	memcpy(&h, data, size < sizeof(h) ? size : sizeof(h));
	snap_check_header(&h, size, err, sizeof(err));
	/* An exact-size copy: ASan flags any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct snap_image img;
	uint64_t mem = 32ull << 20;
	if (size >= sizeof(struct snap_rec) + 8)
		memcpy(&mem, buf + sizeof(struct snap_rec), 8); /* the VM record's size, if any */
	if (snap_parse_state(buf, size, mem, &img, err, sizeof(err)) == 0) {
		for (int i = 0; i < img.nr_vcpus; i++) {
			const struct snap_vcpu_img *v = &img.vcpus[i];
			struct kvm_msr_entry e;
			struct kvm_cpuid_entry2 c;
			for (uint32_t k = 0; k < v->v.nr_msrs; k++) {
				memcpy(&e, v->msrs + k * sizeof(e), sizeof(e));
				sink += e.data;
			}
			for (uint32_t k = 0; k < v->v.nr_cpuid; k++) {
				memcpy(&c, v->cpuid + k * sizeof(c), sizeof(c));
				sink += c.eax;
			}
			if (v->xsave)
				sink += v->xsave[v->v.xsave_len - 1];
		}
		for (int i = 0; i < img.nr_devices; i++)
			if (img.devices[i].len)
				sink += img.devices[i].data[img.devices[i].len - 1];
		for (uint64_t i = 0; i < img.nr_extents; i++) {
			struct snap_extent x;
			memcpy(&x, img.extents + i * sizeof(x), sizeof(x));
			sink += x.len;
		}
		if (img.config_len)
			sink += (uint64_t)strlen(img.config);
		snap_image_free(&img);
	}
	free(buf);
	return 0;
}
