# The serial console is interactive: host input reaches a shell in the guest
# (answer=42 is computed by the guest's shell, not echoed by the tty), and
# the shell's `reboot -f` ends the run with 0.
type_in /tmp/in 'echo answer=$((6 * 7))' 'reboot -f'
l2 interactive-shell 0 '^answer=42' -i /tmp/in -- $W run --kernel $VMLINUX --initrd $RD
# Timers and interrupts work: sleep returns, the UART interrupt fired.
l2 timer-and-uart-irq 0 'slept ttyS0' -- $W run --kernel $BZ --initrd $RD --cmdline "$CMDLINE wisp_run=\"sleep 1; echo slept \$(grep -o ttyS0 /proc/interrupts)\""
