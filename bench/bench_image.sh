#!/bin/bash
# `make bench-image`, the part that boots (docs/image.md): boot -> ready of
# the redis, nginx and memcached images under Wisp and QEMU microvm (same
# kernel, same image, same command line) and of the same root file system
# under `runc run`, interleaved round by round; then redis-benchmark against
# the Wisp VM and the runc container. Ready = the first answer to the
# server's own protocol on a TCP connection from here (PING, GET /, version).
# The container gets a network namespace with a veth, like a container
# engine's, at the VMs' address. Runs where VMs can (scripts/on-kvm.sh:
# here or L1); writes
# build/bench/image-boot.csv. Sizes: bench/bench_image_sizes.sh; table and
# chart: bench/bench_image_plot.py.
cd "$(dirname "$0")/.." || exit 1
bench/where.sh bench-image
B=${BUILD:-build}
WISP=${WISP:-$B/wisp}
IMG=${IMAGE_DIR:-$B/images}
KERNEL=${IMAGE_KERNEL:-$B/guest-kernel-server/bzImage}
ROUNDS=${BENCH_ROUNDS:-3}
N=${BENCH_IMAGE_N:-10000}
OUT=$B/bench/image-boot.csv
CMDLINE="console=ttyS0 reboot=t panic=-1 quiet ip=10.0.2.2::10.0.2.1:255.255.255.0::eth0:off"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$B/bench"
for f in "$KERNEL" "$IMG/redis.lz4" "$IMG/nginx.lz4" "$IMG/memcached.lz4"; do
	[ -r "$f" ] || { echo "bench-image: $f missing (make image-kernel image-test-images)"; exit 1; }
done
command -v runc >/dev/null || { echo "bench-image: runc missing (scripts/deps.sh image)"; exit 1; }

# One query in the server's protocol, over bash's /dev/tcp (no client
# start-up in the measurement): 0 once the server answers.
ask() { # APP HOST
	local want q p
	case $1 in
	redis) p=6379 q='PING\r\n' want='+PONG' ;;
	nginx) p=80 q='GET / HTTP/1.0\r\n\r\n' want='HTTP/1.1 200' ;;
	memcached) p=11211 q='version\r\n' want='VERSION' ;;
	esac
	exec 3<>"/dev/tcp/$2/$p" || return 1
	printf "$q" >&3
	local line=""
	read -r -t 5 line <&3
	exec 3>&-
	[ "${line#"$want"}" != "$line" ]
} 2>/dev/null
export -f ask

# The image's root file system and command, for runc.
for app in redis nginx memcached; do
	mkdir -p "$TMP/$app/rootfs"
	(cd "$TMP/$app/rootfs" && lz4 -dc "$OLDPWD/$IMG/$app.lz4" | cpio -idm --quiet 2>/dev/null)
	python3 - "$TMP/$app" <<'EOF'
import json, subprocess, sys
b = sys.argv[1]
args, uid, gid, env = [], 0, 0, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
for l in open(b + "/rootfs/etc/wisp-image/config").read().splitlines():
    k, _, v = l.partition("=")
    if k == "arg": args.append(v)
    elif k == "uid": uid = int(v)
    elif k == "gid": gid = int(v)
    elif k == "env": env.append(v)
subprocess.run(["runc", "spec", "-b", b], check=True)
c = json.load(open(b + "/config.json"))
c["process"].update(terminal=False, args=args, env=env, user={"uid": uid, "gid": gid})
c["root"] = {"path": "rootfs", "readonly": False}
# The container's network: a namespace with a veth to ours, as container
# engines do, at the address the VMs get.
for n in c["linux"]["namespaces"]:
    if n["type"] == "network":
        n["path"] = "/run/netns/wispbench"
# What a container engine grants by default (nginx chowns, setuids).
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"]
c["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
json.dump(c, open(b + "/config.json", "w"))
EOF
done

# boot APP VMM: launch, poll until ready; $MS the time, the VM left running
# in $PID (runc: container id in $CID).
boot() {
	local app=$1 vmm=$2 host=10.0.2.2
	if [ "$vmm" = runc ]; then ip link set wtap0 down; ip link set wv0 up
	else ip link set wv0 down; ip link set wtap0 up; fi
	local t0=$EPOCHREALTIME
	case $vmm in
	wisp) $WISP run --kernel "$KERNEL" --initrd "$IMG/$app.lz4" --mem 256M --rng --net tap=wtap0 \
		--cmdline "$CMDLINE" >"$TMP/vm.out" 2>&1 </dev/null &
		PID=$! ;;
	qemu) qemu-system-x86_64 -accel kvm -M microvm,acpi=off -cpu host -nodefaults -no-user-config \
		-display none -monitor none -serial stdio -no-reboot -m 256 -kernel "$KERNEL" \
		-initrd "$IMG/$app.lz4" -append "$CMDLINE" -device virtio-rng-device \
		-netdev tap,id=n0,ifname=wtap0,script=no,downscript=no -device virtio-net-device,netdev=n0 \
		>"$TMP/vm.out" 2>&1 </dev/null &
		PID=$! ;;
	runc) CID=bench-$app-$RANDOM
		runc run -b "$TMP/$app" "$CID" >"$TMP/vm.out" 2>&1 </dev/null &
		PID=$! ;;
	esac
	for _ in $(seq 3000); do
		ask "$app" $host && break
		kill -0 $PID 2>/dev/null || { MS=FAIL; tail -5 "$TMP/vm.out" >&2; return 1; }
		sleep 0.02
	done
	local t1=$EPOCHREALTIME
	MS=$(((${t1/./} - ${t0/./}) / 1000))
}
stop() {
	if [ -n "${CID:-}" ]; then runc kill "$CID" KILL 2>/dev/null; runc delete -f "$CID" 2>/dev/null; CID=""; fi
	kill $PID 2>/dev/null
	wait $PID 2>/dev/null
}
export -f boot stop

run() {
	ip link set lo up && ip tuntap add dev wtap0 mode tap && ip addr add 10.0.2.1/24 dev wtap0 &&
		ip link set wtap0 up || { echo "bench-image: cannot set up the TAP"; return 1; }
	# The containers' side: 10.0.2.2 behind a veth, in its own namespace;
	# the VMs' TAP is down meanwhile (the same address).
	ip netns add wispbench && ip link add wv0 type veth peer name wv1 &&
		ip link set wv1 netns wispbench && ip -n wispbench addr add 10.0.2.2/24 dev wv1 &&
		ip -n wispbench link set wv1 up && ip -n wispbench link set lo up &&
		ip addr add 10.0.2.1/24 dev wv0 || { echo "bench-image: cannot set up the veth"; return 1; }
	echo "metric,app,vmm,round,value" >"$OUT"
	for r in $(seq "$ROUNDS"); do
		for app in redis nginx memcached; do
			for vmm in wisp qemu runc; do
				boot $app $vmm
				cp "$TMP/vm.out" "$B/bench/image-console-$app-$vmm.log" 2>/dev/null
				stop
				echo "bench-image: round $r $app $vmm boot->ready $MS ms"
				echo "boot_ms,$app,$vmm,$r,$MS" >>"$OUT"
			done
		done
	done
	# redis-benchmark: Wisp VM vs runc container (ratios only).
	for vmm in wisp runc; do
		boot redis $vmm || continue
		redis-benchmark -h 10.0.2.2 -q -n "$N" -t set,get 2>/dev/null | tr '\r' '\n' | grep 'requests per second' |
			while read -r t v _; do
				echo "bench-image: redis-benchmark $vmm ${t%:} $v req/s (-n $N)"
				echo "rps,redis-${t%:},$vmm,1,$v" >>"$OUT"
			done
		stop
	done
}
export -f run
export WISP KERNEL IMG CMDLINE TMP OUT ROUNDS N B
unshare -n bash -c run
ip netns del wispbench 2>/dev/null
echo "bench-image: wrote $OUT"
