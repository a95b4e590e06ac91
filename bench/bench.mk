# Benchmarks (included by the Makefile). Results land in build/bench/.
BENCH_DIR := $(BUILD)/bench

$(BENCH_DIR)/wisp-bench: bench/wisp_bench.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $< -lcurl -ljansson
$(BENCH_DIR)/exit0: bench/exit0.c
	@mkdir -p $(@D)
	$(CC) -O2 -static -o $@ $<

# Debian's python3 (python3-matplotlib), whatever python3 is first in PATH.
PYTHON ?= /usr/bin/python3

# VM creation time with N VMs already running, against fork+exec and crun,
# and memory per VM (docs/control-plane.md). Needs root (KVM, cgroups, crun).
# BENCH_CREATE_ARGS passes options, e.g. --levels 0,100 --creates 50.
bench-create:
	scripts/deps.sh build bench
	$(MAKE) all $(BENCH_DIR)/wisp-bench $(BENCH_DIR)/exit0
	$(PYTHON) bench/bench_create.py --build $(BUILD) --out $(BENCH_DIR) $(BENCH_CREATE_ARGS)

.PHONY: bench-create
