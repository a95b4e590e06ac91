/* The course's RNG device: a PCI function whose BAR0 (4 KiB of MMIO) holds
 * two 32-bit registers, RNG at 0x0 (read: the next random number) and SEED at
 * 0x4 (write: restart the generator from that seed).
 *
 * The generator is PCG32 (XSH-RR output, 64-bit LCG state) on stream 54, so
 * that seeding with 42 yields the published pcg32 reference sequence; the
 * whole algorithm is in docs/rng-device.md for guests and tests to predict.
 * Unseeded, the state comes from the host's getrandom().
 *
 * Everything else a guest can do to the BAR has one documented answer:
 * a 4-byte aligned access to any other register reads 0 and ignores writes;
 * an access that is not 4 bytes wide or not 4-byte aligned reads all ones
 * (like a PCI master abort), is ignored on write, and is counted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <stdio.h>

#include "devices/pci.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define RNG_BAR_SIZE 4096
#define RNG_REG_RNG  0x0
#define RNG_REG_SEED 0x4

#define PCG_MULT      6364136223846793005ull
#define PCG_STREAM    54u
#define PCG_INCREMENT ((uint64_t)PCG_STREAM << 1 | 1u) /* 109: must be odd */

struct rng_device {
	struct pci_device pci;
	pthread_mutex_t lock; /* vCPUs of an SMP guest read concurrently */
	uint64_t state;
	struct rng_stats stats;
};

static void pcg_step(uint64_t *state)
{
	*state = *state * PCG_MULT + PCG_INCREMENT;
}

static uint32_t pcg_next(uint64_t *state)
{
	uint64_t old = *state;
	pcg_step(state);
	uint32_t x = (uint32_t)(((old >> 18) ^ old) >> 27);
	unsigned rot = (unsigned)(old >> 59);
	return (x >> rot) | (x << ((32 - rot) & 31));
}

static void pcg_seed(uint64_t *state, uint32_t seed)
{
	*state = 0;
	pcg_step(state);
	*state += seed;
	pcg_step(state);
}

static void rng_mmio(void *opaque, struct vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len,
		     bool is_write)
{
	struct rng_device *rng = opaque;
	uint32_t v = 0;
	pthread_mutex_lock(&rng->lock);
	if (len != 4 || (off & 3)) {
		rng->stats.ignored++;
		if (!is_write)
			memset(data, 0xff, len);
		pthread_mutex_unlock(&rng->lock);
		return;
	}
	if (!is_write && off == RNG_REG_RNG) {
		v = pcg_next(&rng->state);
		rng->stats.reads++;
	} else if (is_write && off == RNG_REG_SEED) {
		memcpy(&v, data, 4);
		pcg_seed(&rng->state, v);
		rng->stats.seeds++;
	} else {
		rng->stats.ignored++; /* write to RNG, read of SEED, or no register */
	}
	pthread_mutex_unlock(&rng->lock);
	if (!is_write)
		memcpy(data, &v, 4); /* x86 guests are little-endian, like us */
}

int rng_create(struct pci_bus *pb, const uint32_t *seed, struct rng_device **out)
{
	struct rng_device *rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	if (seed) {
		pcg_seed(&rng->state, *seed);
	} else {
		ssize_t n;
		do
			n = getrandom(&rng->state, sizeof(rng->state), 0);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(rng->state)) {
			int e = n < 0 ? errno : EIO;
			free(rng);
			return -e;
		}
	}
	pthread_mutex_init(&rng->lock, NULL);
	rng->pci = (struct pci_device){
		.name = "rng-device",
		.vendor_id = PCI_VENDOR_WISP,
		.device_id = PCI_DEVICE_WISP_RNG,
		.subsys_vendor_id = PCI_VENDOR_WISP,
		.subsys_id = PCI_DEVICE_WISP_RNG,
		.class_code = PCI_CLASS_OTHER_CRYPTO,
		.revision = 1,
		.bars[0] = {.type = PCI_BAR_MEM32,
			    .size = RNG_BAR_SIZE,
			    .fn = rng_mmio,
			    .opaque = rng},
	};
	int r = pci_add_device(pb, &rng->pci);
	if (r) {
		pthread_mutex_destroy(&rng->lock);
		free(rng);
		return r;
	}
	*out = rng;
	return 0;
}

void rng_destroy(struct rng_device *rng)
{
	pci_remove_device(&rng->pci);
	pthread_mutex_destroy(&rng->lock);
	free(rng);
}

void rng_get_stats(struct rng_device *rng, struct rng_stats *out)
{
	pthread_mutex_lock(&rng->lock);
	*out = rng->stats;
	pthread_mutex_unlock(&rng->lock);
}

/* The device's snapshot state (version 1): the generator and the counters.
 * Its config space is the PCI bus's. */
struct rng_state_v1 {
	uint64_t state;
	struct rng_stats stats;
};

static int rng_save(void *opaque, struct wbuf *out, uint32_t *version)
{
	struct rng_device *rng = opaque;
	struct rng_state_v1 st;
	pthread_mutex_lock(&rng->lock);
	st.state = rng->state;
	st.stats = rng->stats;
	pthread_mutex_unlock(&rng->lock);
	wbuf_put(out, &st, sizeof(st));
	*version = 1;
	return 0;
}

static int rng_restore(void *opaque, const void *buf, size_t len, uint32_t version, char *err,
		       size_t errlen)
{
	struct rng_device *rng = opaque;
	struct rng_state_v1 st;
	int r = device_state_check("state", version, len, 1, sizeof(st), false, err, errlen);
	if (r)
		return r;
	memcpy(&st, buf, sizeof(st));
	pthread_mutex_lock(&rng->lock);
	rng->state = st.state;
	rng->stats = st.stats;
	pthread_mutex_unlock(&rng->lock);
	return 0;
}

static void rng_free(void *opaque)
{
	rng_destroy(opaque);
}

static void rng_print_stats(void *opaque, int fd)
{
	struct rng_stats r;
	rng_get_stats(opaque, &r);
	dprintf(fd, "wisp: rng-device: reads %llu (%llu bytes) seeds %llu ignored %llu\n",
		(unsigned long long)r.reads, (unsigned long long)r.reads * 4,
		(unsigned long long)r.seeds, (unsigned long long)r.ignored);
}

static const struct device_ops rng_ops = {
	.name = "rng-device",
	.destroy = rng_free,
	.save = rng_save,
	.restore = rng_restore,
	.stats = rng_print_stats,
};

int rng_attach(struct vm *vm, const uint32_t *seed)
{
	struct pci_bus *pb;
	struct rng_device *rng;
	int r = pci_bus_get(vm, &pb);
	if (r)
		return r;
	r = rng_create(pb, seed, &rng);
	if (r)
		return r;
	if (!vm_add_device(vm, &rng_ops, rng)) {
		rng_destroy(rng);
		return -ENOMEM;
	}
	return 0;
}
