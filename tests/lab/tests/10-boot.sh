# A bzImage (64-bit boot protocol) and a vmlinux (PVH entry) both reach init
# and run a command there; the guest's `reboot -f` ends the run with 0.
cmd='echo answer=$((6 * 7)); uname -r'
l2 bzimage-reaches-init 0 '^answer=42$' -- $W run --kernel $BZ --initrd $RD --cmdline "$CMDLINE wisp_run=\"$cmd\""
grep -q "$MARK" $OUT || bad bzimage-init-marker "no '$MARK' line"
l2 pvh-reaches-init 0 '^answer=42$' -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"$cmd\""
# The command line reaches the kernel unchanged.
l2 cmdline-reaches-guest 0 'wisp_test_word=7' -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_test_word=7 wisp_run=\"cat /proc/cmdline\""
# Default command line (console=ttyS0 reboot=t panic=-1): the shell on the
# console gets `reboot -f` typed in.
type_in /tmp/in "reboot -f"
l2 default-cmdline 0 "$MARK" -i /tmp/in -- $W run --kernel $BZ --initrd $RD
