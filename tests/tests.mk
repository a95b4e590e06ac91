# `make test`: unit tests (no KVM), then every VM suite on a KVM that can
# run Wisp VMs, this host's or the lab's (tests/vm-checks.sh), and the
# Linux-guest lab. All C runs under ASan + UBSan. See docs/testing.md.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/libwisp.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libwisp.a -lcmocka $(LDLIBS)

test-deps:
	scripts/deps.sh build test fuzz lab deb image oci

# test_virtio_attach needs a real VM: it is the kvm-unit suite of test-vm.
HOST_UNIT_BINS := $(filter-out %/test_virtio_attach,$(UNIT_BINS))
test-unit: $(UNIT_BINS)
	@fail=0; for t in $(HOST_UNIT_BINS); do $$t || fail=1; done; \
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

# Everything the VM suites run (tests/suites.sh), built on the host: the
# suites themselves may run in the lab's L1, which only runs them.
VM_TEST_BINS := $(BUILD)/wisp $(BUILD)/asan/wisp $(BUILD)/asan/wispd $(BUILD)/asan/wisp-vmm $(BUILD)/asan/wisp-tls \
	$(BUILD)/asan/tests/test_virtio_attach $(BUILD)/asan/linux/rng $(BUILD)/tests/uds \
	$(BUILD)/tests/snaptool
test-build: $(VM_TEST_BINS) unikernels

# One suite or a few, on this host's KVM if `wisp check` passes, else in
# the lab (scripts/on-kvm.sh; LAB=yes|no forces one):
#   make test-suites SUITES="run virtio"     (tests/suites.sh lists them)
SUITES ?= all
test-suites: test-build
	scripts/on-kvm.sh --name suites -- tests/suites.sh $(SUITES)
test-integration: test-build
	scripts/on-kvm.sh --name integration -- tests/suites.sh run linux rng virtio

# Snapshots: rewrite a header's version, dump the state (tests, fuzz seeds).
$(BUILD)/tests/snaptool: tests/tools/snaptool.c $(BUILD)/libwisp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libwisp.a $(LDLIBS)

# Save, restore, clones and live migration of daemon VMs (and `wisp run
# --name` VMs, with virtio-vsock and virtio-console), every bad snapshot, a
# migration target that dies, and a migration between two network namespaces.
test-snapshot: test-build
	scripts/on-kvm.sh --name snapshot -- tests/suites.sh snapshot

# The wisp_rng driver in a real Linux guest under QEMU with its `edu` device
# (driver mechanics; SKIPPED without a guest kernel tree). The driver against
# Wisp's own device runs in the KVM lab.
test-rng-driver:
	tests/lab/rng-driver-edu.sh

# The control plane: wispd, wisp-vmm and the client verbs, all under ASan.
test-control: test-build
	scripts/on-kvm.sh --name control -- tests/suites.sh control

# The Debian package (built with dpkg-buildpackage, lintian-clean), the man
# pages against every verb's --help, bash completion. The installed
# binaries run VMs in the `packaging` suite of test-vm.
test-package: all
	$(MAKE) deb
	tests/integration/test_packaging.sh docs

# Every VM suite and the Linux-guest lab: here on a usable KVM, else in two
# L1s side by side (tests/vm-checks.sh). The lab's packages come first.
test-vm: test-build $(GUEST_INITRD)
	scripts/deps.sh lab
	tests/vm-checks.sh

# The stages run in order, each timed; each prints its own PASS/FAIL/SKIPPED
# lines. Every package is installed before the first stage (a fresh machine
# has none of the lab's), and the guest kernel is built (or found in
# ~/.cache/wisp) before the stages that boot it.
STAGE = @scripts/stage.sh
test: test-deps
	$(STAGE) format-check $(MAKE) format-check
	$(STAGE) build $(MAKE) all test-build $(UNIT_BINS)
	$(STAGE) unit $(MAKE) test-unit
	$(STAGE) popek-goldberg $(MAKE) test-pg
	$(STAGE) package $(MAKE) test-package
	$(STAGE) guest-kernel $(MAKE) guest-kernel $(GUEST_INITRD)
	$(STAGE) vm $(MAKE) test-vm
	$(STAGE) rng-driver $(MAKE) test-rng-driver
	$(STAGE) fuzz-short $(MAKE) fuzz-short
	@scripts/stage.sh --summary

include tests/fuzz/fuzz.mk
include tests/lab/lab.mk

.PHONY: test-package test test-deps test-unit test-build test-suites test-integration test-rng-driver test-control test-snapshot test-vm
