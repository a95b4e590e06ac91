# How a run ends: reboot (triple fault or i8042 reset) -> 0; a kernel panic
# -> 126 with the panic and the last console lines on stderr, whether the
# kernel then reboots (panic=-1) or hangs (panic=0); --timeout -> 124.
l2 reboot-triple-fault 0 '' -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"reboot -f\""
grep -q 'wisp-init: exit' $OUT && bad reboot-triple-fault "init went on after reboot -f"
l2 reboot-i8042 0 '' -- $W run --kernel $BZ --initrd $RD --cmdline "console=ttyS0 reboot=k panic=-1 quiet wisp_run=\"reboot -f\""
l2 panic-reboots-126 126 'guest kernel panicked: Kernel panic - not syncing: Attempted to kill init' -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE rdinit=/bin/false"
grep -q 'last console lines' $OUT || bad panic-shows-console "no console tail on stderr"
l2 panic-hang-126 126 'guest kernel panicked' -- $W run --kernel $BZ --initrd $RD --cmdline "console=ttyS0 reboot=t panic=0 quiet rdinit=/bin/false"
l2 timeout-124 124 'timeout of 8000 ms elapsed' -- $W run --timeout 8s --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"sleep 1000\""
