# Wisp: `make` builds the VMM and the example unikernels; `make demo` and
# `make test` first install whatever Debian packages are missing.
# See README.md and docs/ for every target.

CC       ?= gcc
BUILD    := build
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_COMMON := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP -DWISP_VERSION='"$(VERSION)"'
CFLAGS   := $(CFLAGS_COMMON) -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# WISP_TEST_HOOKS: hooks that only tests use (the seccomp violation of
# docs/security.md); never in the release binaries or the package.
ASAN_CFLAGS := $(CFLAGS_COMMON) -O1 -g $(SANFLAGS) -DWISP_TEST_HOOKS
# liburing and jansson (the VM configuration's JSON) are linked from their
# static archives: `wisp run` then loads no shared library but libc (each
# one costs ~0.1-0.3 ms at start here). libseccomp (the VMM's filters) is
# shared here, static in the static binaries.
LDLIBS   := -Wl,-Bstatic -luring -ljansson -Wl,-Bdynamic -lseccomp -lpthread
# For fully static binaries (wisp, wisp-vmm).
LDLIBS_STATIC := -luring -ljansson -lseccomp -lpthread

# --- the VMM ----------------------------------------------------------------
# Every .c under src/ goes into libwisp.a (tests link it), except the
# programs' main()s (main.c, *_main.c).
LIB_SRCS := $(sort $(filter-out src/cli/main.c %_main.c,$(shell find src -name '*.c')))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)

all: $(BUILD)/wisp $(BUILD)/wisp-client unikernels $(BUILD)/tinit

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(BUILD)/libwisp.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/asan/libwisp.a: $(ASAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# `wisp` is static and lean (src/cli/main.c): no shared library to load at
# start-up, ~35% less RSS, and it runs as is in the lab's busybox L1. The
# verbs that talk HTTP to wispd run `wisp-client`, the full dynamic build,
# which can dlopen libcurl. main.c and client.c are built a second time,
# with WISP_LEAN, for it.
$(BUILD)/obj-lean/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DWISP_LEAN -c $< -o $@
$(BUILD)/wisp: $(BUILD)/obj-lean/src/cli/main.o $(BUILD)/obj-lean/src/cli/client.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -static -o $@ $^ $(LDLIBS_STATIC)
$(BUILD)/wisp-client: $(BUILD)/obj/src/cli/main.o $(BUILD)/libwisp.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/wisp: $(BUILD)/asan/obj/src/cli/main.o $(BUILD)/asan/libwisp.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

# --- the control plane: wispd and wisp-vmm --------------------------------------
include src/control/control.mk

# --- unikernels ---------------------------------------------------------------
include guest/unikernel/unikernel.mk
include guest/linux/linux.mk
include src/image/image.mk
include src/oci/oci.mk

# --- the Popek-Goldberg machine (docs/popek-goldberg.md) -----------------------
include pg/pg.mk

# --- tests, benchmarks, demo ----------------------------------------------------
include tests/tests.mk
include bench/bench.mk
include contrib/install.mk

deps:
	scripts/deps.sh build

# On a host that cannot run Wisp VMs (`wisp check` says why), the demo
# boots in the KVM lab instead: L1 under QEMU TCG, about a minute.
demo:
	scripts/deps.sh build
	$(MAKE) all
	@if ! $(BUILD)/wisp check -q; then scripts/deps.sh l1; fi
	scripts/on-kvm.sh --name demo -- $(BUILD)/wisp run $(BUILD)/unikernels/hello.elf

# The course's RNG device (docs/rng-device.md): PCI enumeration, a seeded
# sequence, and the device's rate, from a unikernel on this machine's KVM;
# then the Linux guest with the wisp_rng driver and the rng app, booted by
# Wisp in the KVM lab (a few minutes: L1 runs under QEMU TCG).
demo-rng:
	scripts/deps.sh build lab
	$(MAKE) all $(GUEST_INITRD)
	@echo "== unikernel, on this machine's KVM =="
	$(BUILD)/wisp run --rng-device $(BUILD)/unikernels/lspci.elf
	$(BUILD)/wisp run --stats --rng-device $(BUILD)/unikernels/rng.elf -- seed 42 get 5 bench 65536
	@echo "== Linux guest with the wisp_rng driver, in the KVM lab =="
	LAB_FILTER=rng-demo tests/lab/run.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run --Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

.PHONY: all deps demo demo-rng format format-check clean unikernels
-include $(shell find $(BUILD) -path $(BUILD)/deb -prune -o -type f -name '*.d' -print 2>/dev/null)
