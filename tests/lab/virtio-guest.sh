# Guest side of the lab's virtio tests (tests/75-virtio.sh) and benchmark
# (tests/95-virtio-bench.sh): packed into /lab/initrd-virtio as
# /virtio-guest.sh by stage/virtio.sh and run as
#   wisp_run="sh /virtio-guest.sh WHAT [ARGS]"
# Each WHAT prints lines that the L1 side matches. The L1 end of the TAP is
# 10.0.2.1, the guest 10.0.2.15.
net_up() {
	ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip link set lo up
}

# Count of ICMP echo requests this guest has received (/proc/net/snmp).
in_echos() {
	awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "InEchos") c = i; h = 1 } else print $c }' /proc/net/snmp
}

case "$1" in
drivers) # every virtio driver with devices bound to it, and how many
	line=drivers:
	for d in /sys/bus/virtio/drivers/*; do
		n=$(ls "$d" | grep -c '^virtio[0-9]')
		[ "$n" = 0 ] || line="$line $(basename "$d")=$n"
	done
	echo "$line"
	echo "nodes: $(ls /dev | grep -E '^(vda|hvc0|hwrng|vsock)$' | tr '\n' ' ')$(ls /sys/class/net | grep eth)"
	;;
rebind) # unbind and bind every driver (the device is reset and set up
	# again), then use each device
	for l in /sys/bus/virtio/drivers/*/virtio[0-9]*; do
		drv=${l%/*} dev=${l##*/}
		echo "$dev" >"$drv/unbind" && echo "$dev" >"$drv/bind" || echo "rebind of $dev to $drv failed"
	done
	echo "rng $(head -c 4096 /dev/hwrng | wc -c)"
	echo "blk $(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c 16)"
	net_up && ping -c 1 -W 5 10.0.2.1 | grep 'packets transmitted'
	echo hvc >/dev/hvc0 && echo "hvc written"
	vsock-echo connect 2 5000 65536
	line=drivers:
	for d in /sys/bus/virtio/drivers/*; do
		n=$(ls "$d" | grep -c '^virtio[0-9]')
		[ "$n" = 0 ] || line="$line $(basename "$d")=$n"
	done
	echo "$line"
	;;
hwrng)
	a=$(head -c 4096 /dev/hwrng | md5sum | cut -c1-32)
	b=$(head -c 4096 /dev/hwrng | md5sum | cut -c1-32)
	echo "hwrng=$(cat /sys/class/misc/hw_random/rng_current) bytes=$(head -c 65536 /dev/hwrng | wc -c) $([ "$a" != "$b" ] && echo differ)"
	;;
ext4-write) # TOKEN: write it to a new file on the ext4 disk
	mkdir -p /mnt && mount -t ext4 /dev/vda /mnt || exit 1
	echo "$2" >/mnt/token && sync && umount /mnt && echo "wrote $2"
	;;
ext4-read) # the file from the previous boot, on a read-only disk
	mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt || exit 1
	echo "read $(cat /mnt/token) ro=$(cat /sys/block/vda/ro)"
	umount /mnt
	;;
ping) # ping the L1 end, then wait for L1 to ping us 3 times
	net_up || exit 1
	ping -c 3 -W 5 10.0.2.1 | grep 'packets transmitted'
	echo net-up
	i=0
	while [ "$(in_echos)" -lt 3 ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo "echo requests from L1: $(in_echos)"
	;;
hvc) # a shell on the virtio console; the L1 side types into it
	PS1='hvc# ' sh -i </dev/hvc0 >/dev/hvc0 2>&1
	echo "hvc shell exited $?"
	;;
vsock) # host->guest echo on port 1234, guest->host round trip on 5000
	vsock-echo listen 1234 >/tmp/listen.out 2>&1 &
	p=$!
	vsock-echo connect 2 5000 "${2:-1048576}"
	wait $p
	cat /tmp/listen.out
	;;
bench) # BLK_MIB NET_MIB: the benchmark, one boot per VMM and round:
	# O_DIRECT sequential read of the disk, then a TCP stream to L1's sink
	# on port 5001, then a sink on port 5002 for L1's stream.
	wbench read /dev/vda "$2" 1024 | sed 's/^/blk /'
	net_up || exit 1
	wbench source 10.0.2.1 5001 "$3"
	echo rx-ready
	wbench sink 5002 | sed 's/^/net-rx /'
	;;
*)
	echo "virtio-guest.sh: unknown test '$1'"
	exit 2
	;;
esac
