# Boot-to-init of the same kernel + initrd + command line under Wisp and
# QEMU microvm, in the same L1, interleaved round by round; the ratio is
# what means something (TCG makes absolute times meaningless).
rounds=${LAB_BENCH_ROUNDS:-3}
cmdline="$CMDLINE wisp_run=true"
if [ ! -x "$QEMU" ]; then
	skipped bench "no QEMU bundle in the share"
	exit 0
fi
: >/tmp/b.wisp
: >/tmp/b.qemu
: >/tmp/b.wisp-pvh
: >/tmp/b.rss
i=1
while [ $i -le "$rounds" ]; do
	l2 "bench-wisp-bzimage-$i" 0 "$MARK" -- $W run --kernel $BZ --initrd $RD --cmdline "$cmdline" &&
		{ echo "$L2_MARKER_MS" >>/tmp/b.wisp; echo "$L2_RSS_KB" >>/tmp/b.rss; }
	l2 "bench-qemu-bzimage-$i" 0 "$MARK" -- $QEMU -accel kvm -M microvm,acpi=off -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot -m 128 -kernel $BZ -initrd $RD -append "$cmdline" &&
		{ echo "$L2_MARKER_MS" >>/tmp/b.qemu; echo "$L2_RSS_KB" >>/tmp/b.qemu-rss; }
	l2 "bench-wisp-pvh-$i" 0 "$MARK" -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$cmdline" &&
		echo "$L2_MARKER_MS" >>/tmp/b.wisp-pvh
	i=$((i + 1))
done
w=$(median </tmp/b.wisp)
q=$(median </tmp/b.qemu)
p=$(median </tmp/b.wisp-pvh)
echo "bench: launch->init median over $rounds rounds (ms): wisp-bzimage $w, wisp-pvh $p, qemu-microvm-bzimage $q"
echo "bench: ratio wisp/qemu (bzImage) $(awk -v a="$w" -v b="$q" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
echo "bench: peak RSS median (KiB): wisp $(median </tmp/b.rss), qemu $(median </tmp/b.qemu-rss 2>/dev/null)"
# What the platform pieces cost on L1's KVM (raw ioctls; docs/linux-guests.md).
if [ -x /lab/platform_cost ]; then
	/lab/platform_cost "${LAB_COST_REPS:-20}" | sed 's/^/bench: /'
fi
