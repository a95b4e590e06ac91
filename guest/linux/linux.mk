# Linux guests (included by the Makefile): the guest kernel, the tiny
# initramfs and a static Wisp for the KVM lab. See docs/linux-guests.md.
#
#   make guest-kernel   build (or find in ~/.cache/wisp) the guest kernel;
#                       build/guest-kernel/{bzImage,vmlinux,tree} point at it.
#                       Modules: make -C build/guest-kernel/tree M=$PWD/DIR modules
#   make guest-initrd   build/guest-linux/initrd.lz4 (busybox + guest/linux/init)
GUEST_KERNEL := $(BUILD)/guest-kernel
GUEST_INITRD := $(BUILD)/guest-linux/initrd.lz4

# The script decides from a hash of its inputs whether to build, so it
# always runs (and takes a second when the cache is warm).
guest-kernel:
	scripts/deps.sh lab
	guest/kernel/build.sh

$(GUEST_INITRD): guest/linux/init guest/linux/profile guest/linux/mkinitramfs.sh guest-kernel
	@mkdir -p $(@D)
	guest/linux/mkinitramfs.sh $@
guest-initrd: $(GUEST_INITRD)

.PHONY: guest-kernel guest-initrd
