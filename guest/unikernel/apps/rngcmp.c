/* rngcmp: the emulated PCI RNG device and virtio-rng, measured in the same
 * unikernel and the same run. Usage: rngcmp [PCI_BYTES [VIRTIO_BYTES [CHUNK]]]
 * (defaults 256 KiB, 64 MiB, 64 KiB). Start with --rng-device --rng --stats:
 * bench/virtio.sh adds the VMM's per-device exit counts. A device that is
 * absent is skipped. */
#include "rng_dev.h"
#include "wrt_virtio.h"

static uint8_t buf[1 << 20];

static uint64_t rate(uint64_t bytes, uint64_t ns)
{
	return ns ? bytes * 1000000000ull / ns : 0;
}

int main(int argc, char **argv)
{
	long long pci_bytes = argc > 1 ? rt_atoll(argv[1]) : 256 << 10;
	long long v_bytes = argc > 2 ? rt_atoll(argv[2]) : 64 << 20;
	long long chunk = argc > 3 ? rt_atoll(argv[3]) : 64 << 10;
	if (pci_bytes < 0 || v_bytes < 0 || chunk <= 0 || chunk > (long long)sizeof(buf)) {
		rt_puts("usage: rngcmp [PCI_BYTES [VIRTIO_BYTES [CHUNK]]] (CHUNK at most 1 MiB)");
		return 2;
	}
	struct rt_pci_dev d;
	if (pci_bytes && rt_pci_present() && !rt_pci_find(RNG_VENDOR, RNG_DEVICE, &d)) {
		uintptr_t bar = rng_open();
		uint64_t words = ((uint64_t)pci_bytes + 3) / 4, mix = 0;
		uint64_t t0 = rt_monotonic_ns();
		for (uint64_t i = 0; i < words; i++)
			mix ^= rng_read(bar);
		uint64_t ns = rt_monotonic_ns() - t0;
		rt_printf("pci-rng: %lu bytes in %lu us: %lu bytes/s (xor %lx)\n",
			  (unsigned long)(words * 4), (unsigned long)(ns / 1000),
			  (unsigned long)rate(words * 4, ns), (unsigned long)mix);
	}
	if (v_bytes && wrt_rng_read(buf, 16) == 16) { /* also sets the device up */
		uint64_t done = 0, waits0 = wrt_virtio_wait_exits;
		uint64_t t0 = rt_monotonic_ns();
		while ((long long)done < v_bytes) {
			long long left = v_bytes - (long long)done;
			long got = wrt_rng_read(buf, (size_t)(left < chunk ? left : chunk));
			if (got <= 0) {
				rt_puts("rngcmp: virtio-rng stopped answering");
				return 1;
			}
			done += (uint64_t)got;
		}
		uint64_t ns = rt_monotonic_ns() - t0;
		rt_printf("virtio-rng: %lu bytes in %lu us: %lu bytes/s, chunk %lld, wait exits "
			  "%lu\n",
			  (unsigned long)done, (unsigned long)(ns / 1000),
			  (unsigned long)rate(done, ns), chunk,
			  (unsigned long)(wrt_virtio_wait_exits - waits0));
	}
	return 0;
}
