# Benchmarks (bench/): each prints medians and ratios against peers run
# side by side, and writes a CSV under build/bench/. Each runs on this
# host's KVM when `wisp check` passes, else in the KVM lab (L1 under QEMU
# TCG, scripts/on-kvm.sh), with its peers in the same place; its first line
# says which. LAB=yes|no forces one.
BENCH_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE

$(BUILD)/bench/launch: bench/launch.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<
$(BUILD)/bench/true: bench/true.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<

bench-deps:
	scripts/deps.sh build bench l1

# launch→exit of the noop unikernel: wisp run vs QEMU microvm (same image)
# vs fork+exec+wait of a static true; then CPL3 vs CPL0 application speed.
bench-run: bench-deps
	$(MAKE) all $(BUILD)/bench/launch $(BUILD)/bench/true
	scripts/on-kvm.sh --name bench-run -- bench/run.sh

.PHONY: bench-deps bench-run

# The course's RNG device: random bytes/s and exits per KiB (docs/rng-device.md).
bench-rng: $(BUILD)/wisp unikernels
	scripts/deps.sh build bench l1
	scripts/on-kvm.sh --name bench-rng -- bench/rng.sh

.PHONY: bench-rng

# Paravirtual I/O: the RNG device vs virtio-rng in one run, request sizes,
# I/O thread per VM vs per device, virtio-blk reads (docs/virtio.md).
bench-virtio: $(BUILD)/wisp unikernels
	scripts/deps.sh build bench l1
	scripts/on-kvm.sh --name bench-virtio -- bench/virtio.sh

.PHONY: bench-virtio

# What the Linux platform pieces (irqchip, PIT, memslot order) cost on this
# host's KVM; the lab runs the same tool on L1's (make lab-bench).
$(BUILD)/bench/platform_cost: bench/platform_cost.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<
bench-platform: $(BUILD)/bench/platform_cost
	$(BUILD)/bench/platform_cost 30

.PHONY: bench-platform

# VM creation time with N VMs already running (LightVM's Figure 9), against
# fork+exec+wait of a static true and `crun run`, and memory per VM
# (docs/control-plane.md). Needs root (KVM, cgroups, crun). Results in
# build/bench/create.csv, memory.csv, create.png. BENCH_CREATE_ARGS passes
# options, e.g. --levels 0,100 --creates 50.
$(BUILD)/bench/wisp-bench: bench/wisp_bench.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $< -lcurl -ljansson
# Debian's python3 (python3-matplotlib), whatever python3 is first in PATH.
PYTHON ?= /usr/bin/python3

bench-create: bench-deps
	$(MAKE) all $(BUILD)/bench/wisp-bench $(BUILD)/bench/true
	scripts/on-kvm.sh --name bench-create -- $(PYTHON) bench/bench_create.py --build $(BUILD) --out $(BUILD)/bench $(BENCH_CREATE_ARGS)

.PHONY: bench-create

# Save, restore and migration downtime/total of a 16 MiB and a 256 MiB
# noop unikernel VM (dirty.elf: half its memory written), RUNS runs each
# (default 50), snapshots on tmpfs (docs/snapshot.md, docs/migration.md).
# Results in build/bench/snapshot.csv.
bench-snapshot: bench-deps
	$(MAKE) all
	scripts/on-kvm.sh --name bench-snapshot -- $(PYTHON) bench/bench_snapshot.py --build $(BUILD) --out $(BUILD)/bench $(BENCH_SNAPSHOT_ARGS)

.PHONY: bench-snapshot

# create -> the guest's /init running of one Linux guest: `wisp create` from
# a warm pool shell of its class, `wisp create` cold (--pool none), `wisp
# run --kernel --initrd` and QEMU microvm, same kernel and initramfs (a
# static /init that prints a marker), interleaved (docs/control-plane.md).
# BENCH_LINUX_CREATE_ARGS passes options, e.g. --rounds 9 --mem 256M.
$(BUILD)/bench/linux-init: bench/linux_init.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -static -o $@ $<
bench-linux-create: bench-deps guest-kernel
	$(MAKE) all $(BUILD)/bench/linux-init
	scripts/on-kvm.sh --name bench-linux-create -- $(PYTHON) bench/linux_create.py --build $(BUILD) \
		--out $(BUILD)/bench --kernel $(GUEST_KERNEL)/bzImage --init $(BUILD)/bench/linux-init $(BENCH_LINUX_CREATE_ARGS)

.PHONY: bench-linux-create
