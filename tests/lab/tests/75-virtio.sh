# virtio-mmio devices under Linux (docs/virtio.md): Wisp appends
# virtio_mmio.device=4K@ADDR:IRQ to the command line, the guest's drivers
# bind, and interrupts arrive by irqfd on the in-kernel irqchip through the
# MP table's ISA routing. (The full virtio suite for Linux guests belongs to
# the virtio work; these check that the pieces meet.)
l2 virtio-rng-linux 0 '^hwrng=virtio_rng\.0 bytes=64$' -- $W run --rng --kernel $BZ --initrd $RD --cmdline "$CMDLINE wisp_run=\"echo hwrng=\$(cat /sys/class/misc/hw_random/rng_current) bytes=\$(head -c 64 /dev/hwrng | wc -c)\""
dd if=/dev/zero of=/tmp/disk.img bs=1024 count=1024 2>/dev/null
printf 'wisp-disk-marker' | dd of=/tmp/disk.img bs=1 seek=4096 conv=notrunc 2>/dev/null
l2 virtio-blk-linux 0 '^sectors=2048 wisp-disk-marker$' -- $W run --disk /tmp/disk.img --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"echo sectors=\$(cat /sys/block/vda/size) \$(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c 16)\""
rm -f /tmp/disk.img
