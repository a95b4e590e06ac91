# libFuzzer targets (clang from Debian): the virtqueue walker and each
# device's request parser. `make fuzz` runs each for FUZZ_SECONDS (60 by
# default); `make fuzz-short` (part of `make test`) for 5. Seeds live in
# tests/fuzz/seeds/TARGET; the growing corpus and any crash in build/fuzz/.
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := $(CFLAGS_COMMON) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -Wno-gnu-variable-sized-type-not-at-end
FUZZ_TARGETS := virtq rng blk net console vsock linux snapshot api config pci ctl migrate
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/libwisp.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/fuzz/libwisp.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/fuzz/libwisp.a $(LDLIBS)

# wispd's API links what wispd links (its fake VMMs replace spawn.c); so
# does the wispd side of the control messages.
$(BUILD)/fuzz/fuzz_api $(BUILD)/fuzz/fuzz_ctl: LDLIBS += $(WISPD_LIBS)

fuzz-deps:
	scripts/deps.sh build fuzz

fuzz-build: $(FUZZ_BINS)

# Each target runs for a bounded time; a crash, leak or sanitizer report
# fails the run and leaves the input in build/fuzz/crashes/.
fuzz-run: $(FUZZ_BINS)
	@mkdir -p $(BUILD)/fuzz/crashes
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  if $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	       -artifact_prefix=$(BUILD)/fuzz/crashes/$$t- -print_final_stats=1 \
	       $(BUILD)/fuzz/corpus/$$t tests/fuzz/seeds/$$t >$(BUILD)/fuzz/$$t.log 2>&1; then \
	    echo "PASS: fuzz-$$t ($(FUZZ_SECONDS) s, $$(sed -n 's/^stat::number_of_executed_units: *//p' $(BUILD)/fuzz/$$t.log) runs)"; \
	  else echo "FAIL: fuzz-$$t: see $(BUILD)/fuzz/$$t.log"; tail -30 $(BUILD)/fuzz/$$t.log; fail=1; fi; \
	done; exit $$fail

fuzz: fuzz-deps
	$(MAKE) fuzz-run

fuzz-short: fuzz-deps
	$(MAKE) fuzz-run FUZZ_SECONDS=5

.PHONY: fuzz fuzz-short fuzz-run fuzz-build fuzz-deps
