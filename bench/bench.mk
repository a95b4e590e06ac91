# Benchmarks (included by the Makefile). Each prints its numbers; see docs/.

# The course's RNG device: bytes/s and exits per KiB (docs/rng-device.md).
bench-rng: $(BUILD)/wisp unikernels
	scripts/deps.sh bench
	bench/rng.sh

.PHONY: bench-rng
