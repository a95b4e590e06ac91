# Benchmarks (bench/): each prints medians and ratios against peers run
# side by side, and writes a CSV under build/bench/.
BENCH_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE

$(BUILD)/bench/launch: bench/launch.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<
$(BUILD)/bench/true: bench/true.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<

bench-deps:
	scripts/deps.sh build bench

# launch→exit of the noop unikernel: wisp run vs QEMU microvm (same image)
# vs fork+exec+wait of a static true; then CPL3 vs CPL0 application speed.
bench-run: bench-deps
	$(MAKE) all $(BUILD)/bench/launch $(BUILD)/bench/true
	bench/run.sh

.PHONY: bench-deps bench-run

# The course's RNG device: random bytes/s and exits per KiB (docs/rng-device.md).
bench-rng: $(BUILD)/wisp unikernels
	scripts/deps.sh build bench
	bench/rng.sh

.PHONY: bench-rng

# Paravirtual I/O: the RNG device vs virtio-rng in one run, request sizes,
# I/O thread per VM vs per device, virtio-blk reads (docs/virtio.md).
bench-virtio: $(BUILD)/wisp unikernels
	scripts/deps.sh build bench
	bench/virtio.sh

.PHONY: bench-virtio

# What the Linux platform pieces (irqchip, PIT, memslot order) cost on this
# host's KVM; the lab runs the same tool on L1's (make lab-bench).
$(BUILD)/bench/platform_cost: bench/platform_cost.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<
bench-platform: $(BUILD)/bench/platform_cost
	$(BUILD)/bench/platform_cost 30

.PHONY: bench-platform
