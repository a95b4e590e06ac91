# `make test`: unit tests (no KVM), integration tests (boot unikernels on
# /dev/kvm), then the Linux lab. All C runs under ASan + UBSan.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/libwisp.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(BUILD)/asan/libwisp.a -lcmocka $(LDLIBS)

test-deps:
	scripts/deps.sh build test

test-unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; \
	 if [ $$fail = 0 ]; then echo "unit: all passed"; else echo "unit: FAILED"; exit 1; fi

test-integration: $(BUILD)/asan/wisp unikernels
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels tests/integration/test_run.sh
	WISP=$(BUILD)/asan/wisp UK=$(BUILD)/unikernels tests/integration/test_linux.sh

# The stages run in order; each prints its own PASS/FAIL/SKIPPED lines.
test: test-deps
	$(MAKE) format-check
	$(MAKE) all $(BUILD)/asan/wisp $(UNIT_BINS)
	$(MAKE) test-unit
	$(MAKE) test-integration
	$(MAKE) lab-test

include tests/lab/lab.mk

.PHONY: test test-deps test-unit test-integration
