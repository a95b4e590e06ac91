# `make test`: unit tests (no KVM), integration tests (boot unikernels on
# /dev/kvm), then the Linux lab. All C runs under ASan + UBSan.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/libwisp.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libwisp.a -lcmocka $(LDLIBS)

test-deps:
	scripts/deps.sh build test fuzz

test-unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; \
	 if [ $$fail = 0 ]; then echo "unit: all passed"; else echo "unit: FAILED"; exit 1; fi

# A unix-socket peer for the console and vsock tests.
$(BUILD)/tests/uds: tests/integration/uds.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

# The Linux rng app, built for the host under the sanitizers: its parsing and
# reading are tested against fake devices (WISP_RNG_DEV); the guest build is static.
$(BUILD)/asan/linux/rng: guest/linux/rng-app/rng.c guest/linux/rng-driver/wisp_rng_ioctl.h
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $<

test-integration: $(BUILD)/asan/wisp unikernels $(BUILD)/asan/linux/rng $(BUILD)/tests/uds
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels tests/integration/test_run.sh
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels tests/integration/test_linux.sh
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels RNG_APP=$(BUILD)/asan/linux/rng \
		tests/integration/test_rng.sh
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels UDS=$(BUILD)/tests/uds \
		tests/integration/test_virtio.sh

# Snapshots: rewrite a header's version, dump the state (tests, fuzz seeds).
$(BUILD)/tests/snaptool: tests/tools/snaptool.c $(BUILD)/libwisp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libwisp.a $(LDLIBS)

# Save, restore, clones and live migration of daemon VMs (and `wisp run
# --name` VMs, with virtio-vsock and virtio-console), every bad snapshot, a migration target that dies, and a
# migration between two network namespaces.
test-snapshot: $(BUILD)/asan/wisp $(BUILD)/asan/wispd $(BUILD)/asan/wisp-vmm unikernels $(BUILD)/tests/snaptool $(BUILD)/tests/uds
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels SNAPTOOL=$(BUILD)/tests/snaptool \
		UDS=$(BUILD)/tests/uds tests/integration/test_snapshot.sh

# The wisp_rng driver in a real Linux guest under QEMU with its `edu` device
# (driver mechanics; SKIPPED without a guest kernel tree). The driver against
# Wisp's own device runs in the KVM lab.
test-rng-driver:
	tests/lab/rng-driver-edu.sh

# The control plane: wispd, wisp-vmm and the client verbs, all under ASan.
test-control: $(BUILD)/asan/wisp $(BUILD)/asan/wispd $(BUILD)/asan/wisp-vmm unikernels
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels tests/integration/test_control.sh

# The stages run in order; each prints its own PASS/FAIL/SKIPPED lines.
test: test-deps
	$(MAKE) format-check
	$(MAKE) all $(BUILD)/asan/wisp $(BUILD)/asan/wispd $(BUILD)/asan/wisp-vmm $(UNIT_BINS)
	$(MAKE) test-unit
	$(MAKE) test-integration
	$(MAKE) test-control
	$(MAKE) test-snapshot
	$(MAKE) test-rng-driver
	$(MAKE) fuzz-short
	$(MAKE) lab-test

include tests/fuzz/fuzz.mk
include tests/lab/lab.mk

.PHONY: test test-deps test-unit test-integration test-rng-driver test-control test-snapshot
