#!/bin/bash
# virtio devices end to end with unikernel guests: rng, blk, net (TAP in a
# network namespace), console, vsock; the hostile-guest cases; and every bad
# device option. Usage: test_virtio.sh (from the repo root; WISP, UK and UDS
# select the binaries).
cd "$(dirname "$0")/../.." || exit 1
SUITE=virtio
. tests/integration/lib.sh
UDS=${UDS:-build/tests/uds}

# --- virtio-rng -----------------------------------------------------------------
vm_expect rng-reads-random 0 '^vrng: ok$' '' -- $WISP run --rng $UK/vrng.elf -- 1048576
vm_expect rng-counts-bytes 0 '' 'virtio-rng: bytes (10[4-9][0-9]{4}|1[1-9][0-9]{5})' -- $WISP run --stats --rng $UK/vrng.elf -- 1048576
vm_expect rng-absent 1 'no virtio-rng device' '' -- $WISP run $UK/vrng.elf
vm_expect rng-io-thread-per-device 0 '^vrng: ok$' '' -- env WISP_IO_THREADS=device $WISP run --rng --disk "$UK/hello.elf,ro" $UK/vrng.elf

# --- virtio-blk -----------------------------------------------------------------
head -c $((3 << 20)) /dev/urandom >"$TMP/disk.img"
want=$(cksum <"$TMP/disk.img" | cut -d' ' -f1-2)
vm_expect disk-cksum-matches-host 0 "^cksum $want\$" 'virtio-blk: io_uring' -- $WISP run --stats --disk "$TMP/disk.img" $UK/disk.elf -- cksum
vm_expect disk-cksum-synchronous 0 "^cksum $want\$" 'virtio-blk: synchronous' -- env WISP_BLK_SYNC=1 $WISP run --stats --disk "$TMP/disk.img" $UK/disk.elf -- cksum
vm_expect disk-info 0 '^sectors 6144 ro 0$' '' -- $WISP run --disk "$TMP/disk.img" $UK/disk.elf -- info
vm_expect disk-info-ro 0 '^sectors 6144 ro 1$' '' -- $WISP run --disk "$TMP/disk.img,ro" $UK/disk.elf -- info
vm_expect disk-id-is-file-name 0 '^id: disk.img \(status 0\)$' '' -- $WISP run --disk "$TMP/disk.img" $UK/disk.elf -- id
vm_expect disk-id-option 0 '^id: twenty-bytes-long-x \(status 0\)$' '' -- $WISP run --disk "$TMP/disk.img,id=twenty-bytes-long-x" $UK/disk.elf -- id
vm_expect disk-write 0 '^write: status 0, flush: status 0$' '' -- $WISP run --disk "$TMP/disk.img" $UK/disk.elf -- write 7 "written by one boot"
vm_expect disk-read-next-boot 0 '^read: status 0: written by one boot$' '' -- $WISP run --disk "$TMP/disk.img,ro" $UK/disk.elf -- read 7
if kvm_ok; then
	if [ "$(dd if="$TMP/disk.img" bs=512 skip=7 count=1 2>/dev/null | tr -d '\0')" = "written by one boot" ]; then
		ok disk-write-reaches-file
	else bad disk-write-reaches-file "sector 7 of the image does not hold the text"; fi
else skipped disk-write-reaches-file "no /dev/kvm"; fi
vm_expect disk-ro-refuses-write 1 '^write: status 1, flush: status 0$' 'last: blk write to a read-only disk' -- $WISP run --stats --disk "$TMP/disk.img,ro" $UK/disk.elf -- write 7 nope

# Two devices completing while the guest sleeps in POLL: a kick racing with
# the poll must not leave the vCPU spinning on EINTR (it once did).
head -c $((256 << 10)) /dev/urandom >"$TMP/mix.img"
vm_expect poll-wakeups-two-devices 0 '^iomix: 300 rounds' '' -- $WISP run --rng --disk "$TMP/mix.img" $UK/iomix.elf -- 300 65536
vm_expect poll-wakeups-thread-per-device 0 '^iomix: 300 rounds' '' -- env WISP_IO_THREADS=device $WISP run --rng --disk "$TMP/mix.img" $UK/iomix.elf -- 300 65536

# --- virtio-console --------------------------------------------------------------
if kvm_ok; then
	printf 'hello there\nquit\n' | timeout 30 $WISP run --console virtio $UK/hvc.elf >"$TMP/hvc.out" 2>"$TMP/hvc.err"
	code=$?
	if [ $code = 0 ] && grep -q '^hvc: got hello there$' "$TMP/hvc.out" && grep -q '^hvc: bye$' "$TMP/hvc.out" &&
		! grep -qE 'Sanitizer|runtime error' "$TMP/hvc.err"; then ok console-stdio
	else bad console-stdio "exit $code: $(cat "$TMP/hvc.out" "$TMP/hvc.err" | head -c 300)"; fi
	$WISP run --timeout 20s --console "virtio,sock=$TMP/con.sock" $UK/hvc.elf >"$TMP/hvcs.out" 2>"$TMP/hvcs.err" &
	pid=$!
	for _ in $(seq 50); do [ -S "$TMP/con.sock" ] && break; sleep 0.1; done
	$UDS "$TMP/con.sock" 'from a socket\nquit\n' 'hvc: bye' >"$TMP/hvcs.client" 2>&1
	client=$?
	wait $pid
	code=$?
	if [ $client = 0 ] && [ $code = 0 ] && grep -q 'hvc: got from a socket' "$TMP/hvcs.client" &&
		[ ! -e "$TMP/con.sock" ] && ! grep -qE 'Sanitizer|runtime error' "$TMP/hvcs.err"; then ok console-socket
	else bad console-socket "client $client, wisp $code: $(cat "$TMP/hvcs.client" "$TMP/hvcs.err" | head -c 300)"; fi
else
	skipped console-stdio "no /dev/kvm"
	skipped console-socket "no /dev/kvm"
fi

# --- virtio-vsock -----------------------------------------------------------------
if kvm_ok; then
	$WISP run --timeout 20s --vsock "$TMP/v.sock" $UK/vsockecho.elf -- listen 1234 >"$TMP/vl.out" 2>"$TMP/vl.err" &
	pid=$!
	for _ in $(seq 50); do grep -q listening "$TMP/vl.out" 2>/dev/null && break; sleep 0.1; done
	$UDS "$TMP/v.sock" 'CONNECT 1234\nround trip\n' 'round trip' >"$TMP/vl.client" 2>&1
	client=$?
	wait $pid
	code=$?
	if [ $client = 0 ] && [ $code = 0 ] && grep -q '^OK [0-9]' "$TMP/vl.client" &&
		grep -q 'echoed 11 bytes' "$TMP/vl.out" && ! grep -qE 'Sanitizer|runtime error' "$TMP/vl.err"; then
		ok vsock-host-to-guest
	else bad vsock-host-to-guest "client $client, wisp $code: $(cat "$TMP/vl.client" "$TMP/vl.out" "$TMP/vl.err" | head -c 400)"; fi
	$UDS -l "$TMP/v.sock_4321" 10000 >"$TMP/vc.host" &
	lpid=$!
	for _ in $(seq 50); do [ -S "$TMP/v.sock_4321" ] && break; sleep 0.1; done
	expect vsock-guest-to-host 0 '^vsockecho: reply: guest says hi$' '' -- $WISP run --vsock "$TMP/v.sock" $UK/vsockecho.elf -- connect 4321 "guest says hi"
	wait $lpid
	expect vsock-refused-without-listener 1 'refused' '' -- $WISP run --vsock "$TMP/v.sock" $UK/vsockecho.elf -- connect 4322 x
else
	skipped vsock-host-to-guest "no /dev/kvm"
	skipped vsock-guest-to-host "no /dev/kvm"
	skipped vsock-refused-without-listener "no /dev/kvm"
fi

# --- virtio-net: UDP echo over a TAP, inside a private network namespace -----------
net_test() {
	ip link set lo up && ip tuntap add dev wtap0 mode tap && ip addr add 10.0.2.1/24 dev wtap0 &&
		ip link set wtap0 up || { echo "cannot set up the TAP"; return 1; }
	$WISP run --stats --timeout 20s --net tap=wtap0 $UK/udpecho.elf -- count=2 >"$TMP/ue.out" 2>"$TMP/ue.err" &
	pid=$!
	for _ in $(seq 50); do grep -q listening "$TMP/ue.out" && break; sleep 0.1; done
	exec 3<>/dev/udp/10.0.2.15/7
	printf 'ping over tap' >&3
	read -r -t 5 -N 13 r1 <&3
	printf 'second datagram' >&3
	read -r -t 5 -N 15 r2 <&3
	exec 3>&-
	wait $pid
	code=$?
	echo "replies: [$r1] [$r2] exit $code"
	cat "$TMP/ue.out" "$TMP/ue.err"
	[ "$r1" = 'ping over tap' ] && [ "$r2" = 'second datagram' ] && [ $code = 0 ] &&
		! grep -qE 'Sanitizer|runtime error' "$TMP/ue.err"
}
if ! kvm_ok; then skipped net-udp-echo-over-tap "no /dev/kvm"
elif [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v unshare >/dev/null || [ ! -c /dev/net/tun ]; then
	skipped net-udp-echo-over-tap "needs root, iproute2, unshare and /dev/net/tun"
else
	export -f net_test
	export WISP UK TMP
	if unshare -n bash -c net_test >"$TMP/net.log" 2>&1; then ok net-udp-echo-over-tap
	else bad net-udp-echo-over-tap "$(head -c 600 "$TMP/net.log")"; fi
fi

# --- hostile guests: each malformed chain is answered, the VMM survives ------------
hostile() { # CASE DEVICE-FLAGS REASON
	vm_expect "hostile-$1" 0 "^vhostile: $1: ok\$" "last: $3" -- $WISP run --stats $2 $UK/vhostile.elf -- "$1"
}
head -c 1M /dev/zero >"$TMP/h.img"
hostile loop --rng 'descriptor chain loops'
hostile long --rng 'bad indirect table length'
hostile addr-outside --rng 'buffer outside guest RAM'
hostile len-outside --rng 'buffer outside guest RAM'
hostile addr-wraps --rng 'buffer outside guest RAM'
hostile bad-next --rng 'descriptor index out of range'
hostile bad-head --rng 'available ring entry out of range'
hostile bad-avail-idx --rng 'available index moved by more than the queue size'
hostile readable --rng 'rng request has a device-readable buffer'
hostile nested-indirect --rng 'indirect table inside an indirect table'
hostile indirect-outside --rng 'indirect table outside guest RAM'
hostile ring-outside --rng 'ring outside guest RAM'
hostile bad-size --rng 'queue size is not a power of two'
hostile blk-writable-header "--disk $TMP/h.img" 'blk request header not device-readable'
hostile blk-beyond-end "--disk $TMP/h.img" 'blk request beyond the end of the disk'
hostile blk-no-status "--disk $TMP/h.img" 'blk request without a writable status byte'
vm_expect hostile-blk-unknown-type 0 '^vhostile: blk-unknown-type: ok$' '' -- $WISP run --disk "$TMP/h.img" $UK/vhostile.elf -- blk-unknown-type

# --- bad device options: one clear line, exit 125, no KVM needed -------------------
: >"$TMP/empty.img"
head -c 100 /dev/zero >"$TMP/tiny.img"
expect err-disk-missing 125 '' "disk '/nonexistent.img': No such file or directory" -- $WISP run --disk /nonexistent.img $UK/hello.elf
expect err-disk-directory 125 '' "disk '/tmp': Is a directory" -- $WISP run --disk /tmp $UK/hello.elf
expect err-disk-empty-file 125 '' "empty.img': smaller than one 512-byte sector" -- $WISP run --disk "$TMP/empty.img" $UK/hello.elf
expect err-disk-too-small 125 '' "tiny.img': smaller than one 512-byte sector" -- $WISP run --disk "$TMP/tiny.img" $UK/hello.elf
expect err-disk-bad-option 125 '' "--disk 'x.img,fast': unknown option 'fast' \(use --disk PATH" -- $WISP run --disk x.img,fast $UK/hello.elf
expect err-disk-empty 125 '' "--disk '': empty value" -- $WISP run --disk '' $UK/hello.elf
expect err-disk-long-id 125 '' "id must be 1 to 20 bytes" -- $WISP run --disk "$TMP/disk.img,id=123456789012345678901" $UK/hello.elf
expect err-disk-no-value 125 '' "option '--disk' needs a value" -- $WISP run --disk
if command -v flock >/dev/null; then
	flock -x "$TMP/disk.img" sleep 3 &
	fpid=$!
	sleep 0.3
	expect err-disk-locked 125 '' "disk.img': in use by another VM \(the file is locked\)" -- $WISP run --disk "$TMP/disk.img" $UK/hello.elf
	kill $fpid 2>/dev/null
	wait $fpid 2>/dev/null
else skipped err-disk-locked "no flock(1)"; fi
expect err-net-no-tap 125 '' "--net 'mac=02:00:00:00:00:01': tap=NAME is required" -- $WISP run --net mac=02:00:00:00:00:01 $UK/hello.elf
expect err-net-bad-mac 125 '' "--net 'tap=t0,mac=zz': bad MAC address" -- $WISP run --net tap=t0,mac=zz $UK/hello.elf
expect err-net-multicast-mac 125 '' "MAC address is multicast" -- $WISP run --net tap=t0,mac=01:00:00:00:00:01 $UK/hello.elf
expect err-net-long-name 125 '' "interface name must be 1 to 15 bytes" -- $WISP run --net tap=a-very-long-tap-name $UK/hello.elf
expect err-net-not-tap 125 '' "--net tap=lo: exists but is not a TAP|--net tap=lo: permission denied" -- $WISP run --net tap=lo $UK/hello.elf
expect err-console-kind 125 '' "--console 'serial': only 'virtio' is known" -- $WISP run --console serial $UK/hello.elf
expect err-console-twice 125 '' "--console given twice" -- $WISP run --console virtio --console virtio $UK/hello.elf
expect err-console-sock-dir 125 '' "console socket '/nonexistent/c.sock': No such file or directory" -- $WISP run --console virtio,sock=/nonexistent/c.sock $UK/hello.elf
expect err-vsock-cid 125 '' "--vsock 'v.sock,cid=2': cid must be a number from 3 to 4294967294" -- $WISP run --vsock v.sock,cid=2 $UK/hello.elf
expect err-vsock-path-taken 125 '' "vsock socket '$TMP/disk.img': Address already in use" -- $WISP run --vsock "$TMP/disk.img" $UK/hello.elf
expect err-vsock-path-long 125 '' "path longer than" -- $WISP run --vsock "/tmp/$(printf '%0100d' 0)" $UK/hello.elf
expect err-rng-twice 125 '' "--rng given twice" -- $WISP run --rng --rng $UK/hello.elf
expect err-too-many-devices 125 '' "too many virtio devices \(at most 8\)" -- $WISP run $(for i in 1 2 3 4 5 6 7 8 9; do echo --disk "$TMP/disk.img,ro"; done) $UK/hello.elf

summary
