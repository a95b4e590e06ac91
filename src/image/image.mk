# `wisp image` (included by the Makefile): the guest init every image
# carries, static and small. The library itself is in libwisp.a with the
# rest of src/. See docs/image.md.
#
#   make build/tinit         the init (wisp image finds it next to wisp)
#   make image-kernel        the guest kernel with src/image/kernel/server.config
#                            (epoll, futex, setuid...: what servers need)
#   make bench-image         sizes, boot -> ready, redis-benchmark (the lab)
TINIT := $(BUILD)/tinit

$(TINIT): guest/linux/tinit/tinit.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -Os -static -s -o $@ $<

image-kernel:
	scripts/deps.sh lab
	src/image/kernel/build.sh src/image/kernel/server.config

image-deps:
	scripts/deps.sh image

.PHONY: image-kernel image-deps

# The images the image suite boots (tests/integration/test_image.sh vm, in
# the lab), built here where the Debian mirror is reachable; building them
# is the suite's host half: contents, reproducibility, every bad input.
IMAGE_TEST_STAMP := $(BUILD)/images/.built
$(IMAGE_TEST_STAMP): $(BUILD)/asan/wisp $(TINIT) tests/integration/test_image.sh
	scripts/deps.sh image
	WISP=$(BUILD)/asan/wisp tests/integration/test_image.sh build
	@touch $@
image-test-images: $(IMAGE_TEST_STAMP)
test-image-build: image-test-images
# The VM suites' inputs (tests/tests.mk) include these and the server kernel.
test-build: $(IMAGE_TEST_STAMP) image-kernel

.PHONY: image-test-images test-image-build

# Sizes here (debootstrap needs the mirror), boots where VMs can run (the
# lab here), then the table with the goals and docs/bench/image.{csv,png}.
bench-image:
	scripts/deps.sh build bench l1 image
	$(MAKE) $(BUILD)/wisp $(TINIT) image-kernel image-test-images
	bench/bench_image_sizes.sh
	scripts/on-kvm.sh --name bench-image -- bench/bench_image.sh
	$(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3) bench/bench_image_plot.py

.PHONY: bench-image
