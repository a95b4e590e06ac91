# virtio-mmio devices under Linux (docs/virtio.md): Wisp appends
# virtio_mmio.device=4K@ADDR:IRQ to the command line, the guest's own
# drivers bind, and interrupts arrive by irqfd on the in-kernel irqchip
# through the MP table's ISA routing. The guest side of each check is
# /virtio-guest.sh in /lab/initrd-virtio (stage/virtio.sh); every run has
# --stats, and a device that saw a guest error fails the check.
VRD=/lab/initrd-virtio
guest() { echo "$CMDLINE wisp_run=\"sh /virtio-guest.sh $*\""; }

# After an l2 that passed: the --stats lines must show no guest errors
# (a driver and a device that disagree about the protocol show up there).
no_guest_errors() {
	if grep -E 'guest errors [1-9]' "$OUT" >/tmp/ge; then
		bad "$1" "device counted guest errors: $(tr '\n' '|' </tmp/ge)"
	else
		ok "$1"
	fi
}

# The disk for the tests: a 1 MiB image with a marker at 4 KiB.
dd if=/dev/zero of=/tmp/disk.img bs=1024 count=1024 2>/dev/null
printf 'wisp-disk-marker' | dd of=/tmp/disk.img bs=1 seek=4096 conv=notrunc 2>/dev/null

l2 virtio-rng-linux 0 '^hwrng=virtio_rng\.0 bytes=65536 differ$' -- $W run --stats --rng --kernel $BZ --initrd $VRD --cmdline "$(guest hwrng)" &&
	no_guest_errors virtio-rng-linux-clean
l2 virtio-blk-linux 0 '^sectors=2048 wisp-disk-marker$' -- $W run --stats --disk /tmp/disk.img --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"echo sectors=\$(cat /sys/block/vda/size) \$(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c 16)\"" &&
	no_guest_errors virtio-blk-linux-clean

# All five drivers bound in one boot, each to its device, and their nodes.
if ! lab_tap; then
	bad virtio-tap "cannot set up the TAP wt0 in L1"
fi
rm -f /tmp/c.sock /tmp/v.sock
l2 virtio-all-drivers 0 '^drivers: virtio_blk=1 virtio_console=1 virtio_net=1 virtio_rng=1 vmw_vsock_virtio_transport=1$' -- \
	$W run --stats --rng --disk /tmp/disk.img --net tap=wt0 --console virtio,sock=/tmp/c.sock --vsock /tmp/v.sock \
	--kernel $BZ --initrd $VRD --cmdline "$(guest drivers)" &&
	{
		if grep -q '^nodes: hvc0 hwrng vda vsock eth0$' "$OUT"; then ok virtio-all-nodes; else bad virtio-all-nodes "$(grep '^nodes' "$OUT")"; fi
		no_guest_errors virtio-all-drivers-clean
	}

# Unbinding and binding each driver resets its device and sets it up again
# (status 0, new queues, stale streams dropped); every device works after.
rm -f /tmp/c.sock /tmp/v.sock /tmp/v.sock_5000
/lab/uds -l /tmp/v.sock_5000 30000 >/dev/null 2>&1 &
l2 virtio-rebind-all 0 '^drivers: virtio_blk=1 virtio_console=1 virtio_net=1 virtio_rng=1 vmw_vsock_virtio_transport=1$' -- \
	$W run --stats --rng --disk /tmp/disk.img --net tap=wt0 --console virtio,sock=/tmp/c.sock --vsock /tmp/v.sock \
	--kernel $BZ --initrd $VRD --cmdline "$(guest rebind)" &&
	{
		if grep -q '^rng 4096$' "$OUT" && grep -q '^blk wisp-disk-marker$' "$OUT" && grep -q '^1 packets transmitted, 1 packets received' "$OUT" &&
			grep -q '^hvc written$' "$OUT" && grep -q '^round trip 65536 bytes ok$' "$OUT" && ! grep -q 'failed' "$OUT"; then
			ok virtio-rebind-devices-work
		else
			bad virtio-rebind-devices-work "$(grep -E '^(rng|blk|1 packets|hvc|round|rebind|vsock-echo)' "$OUT" | tr '\n' '|')"
		fi
		no_guest_errors virtio-rebind-clean
	}
wait

# ext4: a file written in one boot is read in the next (which gets the disk
# read-only, and sees it so, and has 2 vCPUs).
cp /lab/ext4.img /tmp/ext4.img
token=wisp-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
l2 virtio-ext4-write 0 "^wrote $token\$" -- $W run --stats --disk /tmp/ext4.img --kernel $BZ --initrd $VRD --cmdline "$(guest ext4-write $token)" &&
	l2 virtio-ext4-read-next-boot 0 "^read $token ro=1\$" -- $W run --stats --cpus 2 --disk /tmp/ext4.img,ro --kernel $VMLINUX --initrd $VRD --cmdline "$(guest ext4-read)" &&
	no_guest_errors virtio-ext4-clean
rm -f /tmp/ext4.img /tmp/disk.img

# virtio-net over the TAP: the guest pings L1, then L1 pings the guest.
when_output '^net-up' sh -c 'ping -c 3 -W 5 10.0.2.15 >/tmp/l1ping 2>&1'
l2 virtio-net-ping-host 0 '^3 packets transmitted, 3 packets received' -- $W run --stats --net tap=wt0 --kernel $BZ --initrd $VRD --cmdline "$(guest ping)" &&
	{
		if grep -q '^echo requests from L1: [3-9]' "$OUT" && grep -q '3 packets received' /tmp/l1ping; then
			ok virtio-net-ping-guest
		else
			bad virtio-net-ping-guest "guest: $(grep echo.requests "$OUT"), L1: $(tr '\n' '|' </tmp/l1ping)"
		fi
		no_guest_errors virtio-net-clean
	}
wait

# hvc0 carries a shell: L1 types into the console socket, the guest's shell
# computes the answer (the typed line only holds the expression).
rm -f /tmp/c.sock /tmp/hvc.out
(
	n=0
	while [ $n -lt 100 ]; do
		/lab/uds /tmp/c.sock '\necho hvc=$((6 * 7))\nexit\n' 'hvc=42' 30000 >/tmp/hvc.out 2>&1
		[ $? = 2 ] || break # 2: could not connect yet
		sleep 0.2
		n=$((n + 1))
	done
) &
l2 virtio-console-hvc0-shell 0 '^hvc shell exited 0' -- $W run --stats --console virtio,sock=/tmp/c.sock --kernel $BZ --initrd $VRD --cmdline "$(guest hvc)"
wait
if grep -q '^hvc=42' /tmp/hvc.out; then ok virtio-console-hvc0-answer; else bad virtio-console-hvc0-answer "console client saw: $(tr '\n' '|' </tmp/hvc.out | cut -c1-300)"; fi

# vsock: a host client's stream to a guest listener (echoed), and a guest
# stream of 1 MiB to a host listener and back, checked byte for byte.
rm -f /tmp/v.sock /tmp/v.sock_5000 /tmp/vh.out
/lab/uds -l /tmp/v.sock_5000 30000 >/dev/null 2>&1 &
(
	n=0
	while [ $n -lt 150 ]; do
		/lab/uds /tmp/v.sock 'CONNECT 1234\nhello-vsock\n' 'hello-vsock' 5000 >/tmp/vh.out 2>&1 && break
		sleep 0.2
		n=$((n + 1))
	done
) &
l2 virtio-vsock-guest-to-host 0 '^round trip 1048576 bytes ok$' -- $W run --stats --vsock /tmp/v.sock --kernel $BZ --initrd $VRD --cmdline "$(guest vsock)" &&
	{
		if grep -q '^echoed 12 bytes$' "$OUT" && grep -q '^OK [0-9]*$' /tmp/vh.out && grep -q '^hello-vsock$' /tmp/vh.out; then
			ok virtio-vsock-host-to-guest
		else
			bad virtio-vsock-host-to-guest "guest: $(grep -E 'echoed|listening' "$OUT" | tr '\n' '|'), host client: $(tr '\n' '|' </tmp/vh.out | cut -c1-200)"
		fi
		no_guest_errors virtio-vsock-clean
	}
wait
