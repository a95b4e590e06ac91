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
