# virtio throughput, Wisp vs QEMU microvm in the same L1, interleaved round
# by round: the same kernel (bzImage), initramfs (initrd-virtio), 128 MiB,
# 1 vCPU, disk image and TAP. One boot per VMM and round runs the guest's
# `virtio-guest.sh bench`:
#  - blk: O_DIRECT sequential read of a BLK_MIB image in 1 MiB reads, timed
#    in the guest;
#  - net tx: a TCP stream of NET_MIB from the guest to wbench's sink in L1,
#    timed by the sink;
#  - net rx: a TCP stream of NET_MIB from L1 to a sink in the guest.
# QEMU runs with its defaults (virtio-blk on aio=threads, virtio-net in its
# own process). Two more variants explain the numbers: qemu-vhost gives
# QEMU vhost-net, the in-kernel virtio-net data path Wisp does not have;
# wisp-thp runs Wisp with L1's shmem_enabled=advise, so that Wisp's
# madvise(MADV_HUGEPAGE) on a Linux guest's RAM (a memfd) takes effect and
# it gets transparent huge pages as QEMU's anonymous RAM does -- with 4 KiB
# pages every page the guest touches first costs a nested page fault exit. TCG makes absolute numbers meaningless: the
# ratios are what to read (docs/virtio.md). `make lab-test` runs 1 round,
# `make lab-bench` 10.
rounds=${LAB_VIRTIO_ROUNDS:-${LAB_BENCH_ROUNDS:-1}}
# Each boot moves 128 MiB of disk and 2 x 32 MiB of TCP under TCG: 60 s
# (lib.sh's default for a boot) ran out for all four VMMs in a loaded lab.
L2_TIMEOUT=${LAB_BENCH_TIMEOUT:-300}
blk_mib=${LAB_BLK_MIB:-128}
net_mib=${LAB_NET_MIB:-32}
VRD=/lab/initrd-virtio
cmdline="$CMDLINE wisp_run=\"sh /virtio-guest.sh bench $blk_mib $net_mib\""
if [ ! -x "$QEMU" ]; then
	skipped virtio-bench "no QEMU bundle in the share"
	exit 0
fi
if ! lab_tap; then
	bad virtio-bench "cannot set up the TAP wt0 in L1"
	exit 0
fi
dd if=/dev/urandom of=/tmp/bench.img bs=1M count="$blk_mib" 2>/dev/null
qemu_common="-accel kvm -M microvm,acpi=off -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot -m 128 -kernel $BZ -initrd $VRD -drive id=d0,file=/tmp/bench.img,format=raw,if=none -device virtio-blk-device,drive=d0 -device virtio-net-device,netdev=n0"
vmms=wisp
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [ -w $thp ]; then
	thp_was=$(sed -n 's/.*\[\(.*\)\].*/\1/p' $thp)
	vmms="$vmms wisp-thp"
else
	skipped virtio-bench-wisp-thp "no $thp in L1"
fi
vmms="$vmms qemu"
if [ -c /dev/vhost-net ]; then
	vmms="$vmms qemu-vhost"
else
	skipped virtio-bench-qemu-vhost "no /dev/vhost-net in L1"
fi
for v in $vmms; do : >/tmp/vb.$v.blk; : >/tmp/vb.$v.tx; : >/tmp/vb.$v.rx; : >/tmp/vb.$v.rss; done

# MB/s from a "wbench: ... = RATE MB/s" line matching PREFIX in FILE.
rate() { sed -n "s/^$1.*= \([0-9.]*\) MB\/s.*/\1/p" "$2" | head -1; }

# One boot of VMM v, round i: blk and net rx figures from the guest, net tx
# from the L1 sink.
run_one() {
	_v=$1 _i=$2
	/lab/wbench sink 5001 >/tmp/vb.sink 2>&1 &
	_sink=$!
	when_output '^rx-ready' /lab/wbench source 10.0.2.15 5002 "$net_mib"
	_src=$!
	case $_v in
	wisp) l2 "virtio-bench-wisp-$_i" 0 '^net-rx wbench: ' -- $W run --disk /tmp/bench.img --net tap=wt0 --kernel $BZ --initrd $VRD --cmdline "$cmdline" ;;
	wisp-thp)
		echo advise >$thp
		l2 "virtio-bench-wisp-thp-$_i" 0 '^net-rx wbench: ' -- $W run --disk /tmp/bench.img --net tap=wt0 --kernel $BZ --initrd $VRD --cmdline "$cmdline"
		_r=$?
		echo "$thp_was" >$thp
		(exit $_r)
		;;
	qemu) l2 "virtio-bench-qemu-$_i" 0 '^net-rx wbench: ' -- $QEMU $qemu_common -netdev tap,id=n0,ifname=wt0,script=no,downscript=no -append "$cmdline" ;;
	qemu-vhost) l2 "virtio-bench-qemu-vhost-$_i" 0 '^net-rx wbench: ' -- $QEMU $qemu_common -netdev tap,id=n0,ifname=wt0,script=no,downscript=no,vhost=on -append "$cmdline" ;;
	esac
	_ok=$?
	kill $_sink $_src 2>/dev/null
	wait $_sink $_src 2>/dev/null
	[ $_ok = 0 ] || return
	_b=$(rate 'blk wbench:' "$OUT") _r=$(rate 'net-rx wbench:' "$OUT") _t=$(rate 'wbench:' /tmp/vb.sink)
	if [ -n "$_b" ] && [ -n "$_r" ] && [ -n "$_t" ]; then
		echo "$_b" >>/tmp/vb.$_v.blk
		echo "$_t" >>/tmp/vb.$_v.tx
		echo "$_r" >>/tmp/vb.$_v.rx
		echo "$L2_RSS_KB" >>/tmp/vb.$_v.rss
		echo "bench: virtio $_v round $_i: blk $_b MB/s, net tx $_t MB/s, net rx $_r MB/s, peak RSS $L2_RSS_KB KiB"
	else
		bad "virtio-bench-$_v-$_i-numbers" "blk '$_b' tx '$_t' rx '$_r': $(tail_out "$OUT") sink: $(tr '\n' '|' </tmp/vb.sink)"
	fi
}

i=1
while [ $i -le "$rounds" ]; do
	for v in $vmms; do run_one $v $i; done
	i=$((i + 1))
done
rm -f /tmp/bench.img

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
for m in blk tx rx; do
	case $m in blk) what="virtio-blk seq read (${blk_mib} MiB, O_DIRECT, 1 MiB reads)" ;; tx) what="virtio-net guest->L1 TCP (${net_mib} MiB)" ;; rx) what="virtio-net L1->guest TCP (${net_mib} MiB)" ;; esac
	w=$(median </tmp/vb.wisp.$m)
	q=$(median </tmp/vb.qemu.$m)
	line="bench: $what MB/s, median of $rounds: wisp $w, qemu $q"
	for v in wisp-thp qemu-vhost; do
		[ -e /tmp/vb.$v.$m ] && line="$line, $v $(median </tmp/vb.$v.$m)"
	done
	line="$line; wisp/qemu $(ratio "$w" "$q")"
	[ -e /tmp/vb.wisp-thp.$m ] && line="$line, wisp-thp/qemu $(ratio "$(median </tmp/vb.wisp-thp.$m)" "$q")"
	echo "$line"
done
line="bench: virtio VMM peak RSS KiB, median of $rounds:"
for v in $vmms; do line="$line $v $(median </tmp/vb.$v.rss)"; done
echo "$line"
