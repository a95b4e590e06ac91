#!/bin/bash
# `wisp image` end to end (docs/image.md).
#
#   test_image.sh build   on the host, no KVM: builds the test images into
#                         build/images (redis, nginx, memcached from Debian
#                         .debs, cached in ~/.cache/wisp/image), checks what
#                         is in them, that they are reproducible, and every
#                         bad input (one line, non-zero exit, no image left)
#   test_image.sh vm      on a KVM that boots Linux (the lab's L1): each
#                         server in a Wisp VM on a TAP, driven by its own
#                         client (redis-cli, curl, python3 for memcached);
#                         the init's exit status, SIGTERM forwarding, an ext4
#                         root; the redis image under QEMU microvm too
#   test_image.sh         both
#
# The vm phase needs the images of the build phase and the server kernel
# (make image-kernel: build/guest-kernel-server).
cd "$(dirname "$0")/../.." || exit 1
SUITE=image
. tests/integration/lib.sh
# Each command is capped at 120 s, not 30 (a hang guard): a package build
# (download, extract, closure) took over 30 s on a loaded 2-core host.
export EXPECT_TIMEOUT=${EXPECT_TIMEOUT:-120}
phase=${1:-all}
IMG=${IMAGE_DIR:-build/images}
KERNEL=${IMAGE_KERNEL:-build/guest-kernel-server/bzImage}
CMDLINE_BASE="console=ttyS0 reboot=t panic=-1 quiet"
NET="ip=10.0.2.2::10.0.2.1:255.255.255.0:wisp-guest:eth0:off:10.0.2.1"

# The command lines the images run (the nginx one does what the Debian
# package's maintainer scripts would: a site, its directories; and drops
# the site's IPv6 listen, as the guest kernel has no IPv6).
REDIS_CMD="redis-server --protected-mode no --save '' --appendonly no"
NGINX_CMD="sh -c 'mkdir -p /var/lib/nginx /var/log/nginx /var/www/html /etc/nginx/sites-enabled && echo wisp-nginx-page > /var/www/html/index.html && sed /::/d /etc/nginx/sites-available/default > /etc/nginx/sites-enabled/default && exec nginx -g \"daemon off; error_log stderr;\"'"
MEMCACHED_CMD="memcached -p 11211 -U 0"

# --- build phase --------------------------------------------------------------------
build_phase() {
	mkdir -p "$IMG" "$TMP/od" "$TMP/empty"
	# build NAME -- ARGS: an image that must build
	build() {
		local name=$1
		shift 2
		if $WISP image build -q "$@" >"$TMP/b.out" 2>"$TMP/b.err" && [ -s "$IMG/$name" ] &&
			! grep -qE 'Sanitizer|runtime error' "$TMP/b.err"; then
			ok "build-$name"
		else
			bad "build-$name" "$(head -c 400 "$TMP/b.err")"
		fi
	}
	build redis.lz4 -- --package redis-server --cmd "$REDIS_CMD" -o "$IMG/redis.lz4"
	build nginx.lz4 -- --package nginx-light --cmd "$NGINX_CMD" -o "$IMG/nginx.lz4"
	build memcached.lz4 -- --package memcached --user nobody --cmd "$MEMCACHED_CMD" -o "$IMG/memcached.lz4"
	build exit3.lz4 -- --rootfs "$TMP/empty" --cmd "sh -c 'echo app-says-hi \$GREETING; exit 3'" --env GREETING=hello -o "$IMG/exit3.lz4"
	build term.lz4 -- --rootfs "$TMP/empty" --cmd "sh -c 'trap \"echo got-term; exit 7\" TERM; kill -TERM 1; while :; do sleep 1; done'" -o "$IMG/term.lz4"
	build user.ext4 -- --rootfs "$TMP/empty" --format ext4 --user 1234:567 --workdir /tmp --cmd "sh -c 'echo ext4-root \$(id -u):\$(id -g) \$(pwd); grep -c \" / ext4 rw\" /proc/mounts'" -o "$IMG/user.ext4"

	# Sizes: the goals of issue 13.
	size_ok() { # NAME MAX_BYTES
		local s
		s=$(stat -c %s "$IMG/$1" 2>/dev/null || echo 0)
		if [ "$s" -gt 0 ] && [ "$s" -le "$2" ]; then ok "size-$1 ($s bytes)"
		else bad "size-$1" "$s bytes, goal <= $2"; fi
	}
	size_ok redis.lz4 $((10 * 1000 * 1000))
	size_ok nginx.lz4 $((8 * 1000 * 1000))

	# What is inside, and why.
	expect inspect-redis-entry 0 '^l +0 /usr/bin/redis-server -> redis-check-rdb	package redis-server$' '' -- $WISP image inspect "$IMG/redis.lz4"
	expect inspect-redis-closure 0 '/usr/bin/redis-check-rdb	target of /usr/bin/redis-server' '' -- $WISP image inspect "$IMG/redis.lz4"
	expect inspect-redis-conffile 0 '/etc/redis/redis.conf	package redis-server \(conffile\)' '' -- $WISP image inspect "$IMG/redis.lz4"
	expect inspect-redis-loader 0 '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2	dynamic loader of ' '' -- $WISP image inspect "$IMG/redis.lz4"
	expect inspect-redis-libssl 0 'libssl.so.3	library libssl.so.3 needed by /usr/bin/redis-check-rdb' '' -- $WISP image inspect "$IMG/redis.lz4"
	expect inspect-nginx-binary 0 '/usr/sbin/nginx	command nginx named by the entry command' '' -- $WISP image inspect "$IMG/nginx.lz4"
	expect inspect-nginx-config 0 '/etc/nginx/nginx.conf	package nginx-common \(conffile\)' '' -- $WISP image inspect "$IMG/nginx.lz4"
	expect inspect-init-busybox 0 '/bin/busybox	busybox' '' -- $WISP image inspect "$IMG/memcached.lz4"
	if $WISP image inspect "$IMG/redis.lz4" | grep -qE ' /usr/share/(doc|man|locale)/|redis-benchmark'; then
		bad inspect-redis-dropped "docs, man pages, locales or unused executables in the image"
	else ok inspect-redis-dropped; fi
	expect inspect-ext4 0 '/etc/wisp-image/config	wisp init' '' -- $WISP image inspect "$IMG/user.ext4"
	expect boot-info-ext4 0 '^cmdline=root=/dev/vda rw rootfstype=ext4 init=/init$' '' -- $WISP image boot-info "$IMG/user.ext4"
	expect boot-info-initramfs 0 '^format=initramfs$' '' -- $WISP image boot-info "$IMG/redis.lz4"
	expect inspect-not-image 1 '' "neither an LZ4 initramfs nor an ext4" -- $WISP image inspect /bin/true

	# A local binary with the host's libraries; a static one alone.
	build true.lz4 -- --binary /bin/true -o "$IMG/true.lz4"
	expect binary-closure 0 'libc.so.6	library libc.so.6 needed by /usr/bin/true' '' -- $WISP image inspect "$IMG/true.lz4"
	build busybox.lz4 -- --binary /bin/busybox --cmd "busybox true" -o "$IMG/busybox.lz4"
	if $WISP image inspect "$IMG/busybox.lz4" | grep -q 'libc.so'; then bad binary-static "a static binary got a libc"
	else ok binary-static; fi

	# Same inputs, same bytes (both formats).
	$WISP image build -q --package redis-server --cmd "$REDIS_CMD" -o "$TMP/od/redis2.lz4" 2>/dev/null
	if cmp -s "$IMG/redis.lz4" "$TMP/od/redis2.lz4"; then ok reproducible-initramfs
	else bad reproducible-initramfs "two builds differ"; fi
	sleep 1 # a different second: times must not leak in
	$WISP image build -q --rootfs "$TMP/empty" --format ext4 --user 1234:567 --workdir /tmp --cmd "sh -c 'echo ext4-root \$(id -u):\$(id -g) \$(pwd); grep -c \" / ext4 rw\" /proc/mounts'" -o "$TMP/od/user2.ext4" 2>/dev/null
	if cmp -s "$IMG/user.ext4" "$TMP/od/user2.ext4"; then ok reproducible-ext4
	else bad reproducible-ext4 "two builds differ"; fi

	# Bad input: one line naming the problem, exit 1, nothing left behind.
	rm -f "$TMP/od"/*
	bad_input() { # NAME ERR_RE -- ARGS
		local name=$1 re=$2
		shift 3
		expect "err-$name" 1 '' "$re" -- $WISP image build -q "$@"
		if [ "$(wc -l <"$TMP/err")" != 1 ]; then bad "err-$name-one-line" "$(cat "$TMP/err")"
		elif [ -n "$(ls -A "$TMP/od")" ]; then bad "err-$name-no-output" "left: $(ls "$TMP/od")"
		else ok "err-$name-one-line-no-output"; fi
	}
	bad_input no-package "^wisp image: package 'nosuchpkg-wisp': not found in the APT lists" -- --package nosuchpkg-wisp -o "$TMP/od/x.lz4"
	bad_input bad-package-name "^wisp image: package '--foo': not a Debian package name" -- --package=--foo -o "$TMP/od/x.lz4"
	printf '#!/bin/sh\necho hi\n' >"$TMP/script"
	bad_input not-elf "^wisp image: binary '$TMP/script': not an ELF file$" -- --binary "$TMP/script" -o "$TMP/od/x.lz4"
	python3 -c "
import struct,sys
h=b'\x7fELF'+bytes([2,1,1])+bytes(9)+struct.pack('<HHIQQQIHHHHHH',2,183,1,0x400000,64,0,0,64,56,0,0,0,0)
open(sys.argv[1],'wb').write(h+bytes(64))" "$TMP/arm64"
	bad_input wrong-arch "^wisp image: binary '$TMP/arm64': an ELF for aarch64 \(machine 183\), not x86-64$" -- --binary "$TMP/arm64" -o "$TMP/od/x.lz4"
	# A rootfs whose program's libc is missing, and whose lib link tries
	# to reach the host's: the closure stays inside the rootfs.
	mkdir -p "$TMP/rootfs/usr/bin" "$TMP/rootfs/lib64"
	cp /usr/bin/true "$TMP/rootfs/usr/bin/app"
	cp -L /lib64/ld-linux-x86-64.so.2 "$TMP/rootfs/lib64/"
	ln -s ../../../../../../../../usr/lib "$TMP/rootfs/lib"
	bad_input missing-library "^wisp image: library libc.so.6 needed by /usr/bin/app: not found$" -- --rootfs "$TMP/rootfs" --cmd app -o "$TMP/od/x.lz4"
	bad_input no-command "^wisp image: command 'nosuchcmd' not found in the image$" -- --package memcached --cmd nosuchcmd -o "$TMP/od/x.lz4"
	bad_input unwritable "^wisp image: output '/nonexistent-dir/x.lz4': cannot write there: No such file or directory$" -- --package memcached -o /nonexistent-dir/x.lz4
	bad_input bad-env "^wisp image: --env 'NOEQUALS': want K=V$" -- --rootfs "$TMP/empty" --cmd sh --env NOEQUALS -o "$TMP/od/x.lz4"
	bad_input two-sources "^wisp image: give one of --package, --binary and --rootfs$" -- --rootfs "$TMP/empty" --binary /bin/true -o "$TMP/od/x.lz4"
	# A full disk: a 3 MiB tmpfs for a 5.7 MB image.
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
		full() {
			mount -t tmpfs -o size=3m tmpfs "$TMP/od" || exit 99
			$WISP image build -q --package memcached --cmd "$MEMCACHED_CMD" -o "$TMP/od/x.lz4"
			r=$?
			echo "left: $(ls -A "$TMP/od")" >&2
			exit $r
		}
		export -f full
		export WISP TMP MEMCACHED_CMD
		unshare -m bash -c full >"$TMP/full.out" 2>"$TMP/full.err"
		code=$?
		if [ $code = 1 ] && grep -qx "wisp image: writing the image: No space left on device" "$TMP/full.err" &&
			grep -qx "left: " "$TMP/full.err"; then ok err-full-disk
		else bad err-full-disk "exit $code: $(head -c 300 "$TMP/full.err")"; fi
	else
		skipped err-full-disk "needs root and unshare for a small tmpfs"
	fi
	expect tinit-not-pid1 2 '' 'runs as PID 1 only' -- build/tinit
}

# --- vm phase -------------------------------------------------------------------------
# vm_server NAME IMAGE PORT CLIENT_FN [qemu]: boot IMAGE on a TAP in a
# private network namespace, run CLIENT_FN (in L1, against 10.0.2.2) once
# PORT accepts connections, then stop the VM. Passes if the client passed.
vm_server() {
	local name=$1 image=$2 port=$3 client=$4 vmm=${5:-wisp}
	serve() {
		ip link set lo up && ip tuntap add dev wtap0 mode tap && ip addr add 10.0.2.1/24 dev wtap0 &&
			ip link set wtap0 up || { echo "cannot set up the TAP"; return 1; }
		if [ "$vmm" = qemu ]; then
			qemu-system-x86_64 -accel kvm -M microvm,acpi=off -cpu host -nodefaults -no-user-config \
				-display none -monitor none -serial stdio -no-reboot -m 256 -kernel "$KERNEL" \
				-initrd "$image" -append "$CMDLINE_BASE $NET" \
				-netdev tap,id=n0,ifname=wtap0,script=no,downscript=no -device virtio-net-device,netdev=n0 \
				-device virtio-rng-device \
				>"$TMP/$name.out" 2>&1 </dev/null &
		else
			$WISP run --kernel "$KERNEL" --initrd "$image" --mem 256M --rng --net tap=wtap0 \
				--cmdline "$CMDLINE_BASE $NET" >"$TMP/$name.out" 2>&1 </dev/null &
		fi
		local pid=$! t0=$EPOCHREALTIME r=1
		# A connect from bash first (cheap), then the real client.
		for _ in $(seq 3000); do
			kill -0 $pid 2>/dev/null || break
			if (exec 3<>"/dev/tcp/10.0.2.2/$port") 2>/dev/null; then break; fi
			sleep 0.05
		done
		local tp=$EPOCHREALTIME
		for _ in $(seq 20); do
			kill -0 $pid 2>/dev/null || break
			if $client >"$TMP/$name.client" 2>&1; then r=0; break; fi
			sleep 0.5
		done
		local t1=$EPOCHREALTIME
		echo "$name: client answered after $(((${t1/./} - ${t0/./}) / 1000)) ms, port open after $(((${tp/./} - ${t0/./}) / 1000)) ms (r=$r)"
		cat "$TMP/$name.client"
		kill $pid 2>/dev/null
		wait $pid
		tail -5 "$TMP/$name.out"
		return $r
	}
	export -f serve
	export WISP KERNEL TMP CMDLINE_BASE NET name image port client vmm
	if unshare -n bash -c serve >"$TMP/$name.log" 2>&1; then ok "$name ($(head -1 "$TMP/$name.log" | grep -o 'after [0-9]* ms.*ms'))"
	else bad "$name" "$(tail -c 600 "$TMP/$name.log")"; fi
}

redis_client() {
	[ "$(timeout 5 redis-cli -h 10.0.2.2 PING)" = PONG ] &&
		[ "$(timeout 5 redis-cli -h 10.0.2.2 SET wisp-key "hello from L1")" = OK ] &&
		[ "$(timeout 5 redis-cli -h 10.0.2.2 GET wisp-key)" = "hello from L1" ] &&
		echo "PING PONG, SET OK, GET 'hello from L1'"
}
nginx_client() {
	curl -sS --max-time 5 http://10.0.2.2/ | grep -x wisp-nginx-page
}
memcached_client() {
	timeout 10 python3 -c '
import socket
s = socket.create_connection(("10.0.2.2", 11211), timeout=5)
s.sendall(b"set wisp 0 0 5\r\nhello\r\n")
assert s.recv(100) == b"STORED\r\n"
s.sendall(b"get wisp\r\n")
r = b""
while not r.endswith(b"END\r\n"):
    r += s.recv(100)
assert r == b"VALUE wisp 0 5\r\nhello\r\nEND\r\n", r
print("set STORED, get hello")'
}
export -f redis_client nginx_client memcached_client

vm_phase() {
	if ! kvm_ok; then
		for c in redis nginx memcached exit-status sigterm ext4-root qemu-microvm-redis; do skipped "vm-$c" "no /dev/kvm"; done
		return
	fi
	if [ ! -r "$KERNEL" ] || [ ! -r "$IMG/redis.lz4" ]; then
		bad vm-setup "needs $KERNEL (make image-kernel) and $IMG/*.lz4 (tests/integration/test_image.sh build)"
		return
	fi
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || [ ! -c /dev/net/tun ]; then
		skipped vm-servers "needs root, unshare and /dev/net/tun"
	else
		vm_server vm-redis "$IMG/redis.lz4" 6379 redis_client
		vm_server vm-nginx "$IMG/nginx.lz4" 80 nginx_client
		vm_server vm-memcached "$IMG/memcached.lz4" 11211 memcached_client
		if command -v qemu-system-x86_64 >/dev/null; then
			vm_server vm-qemu-microvm-redis "$IMG/redis.lz4" 6379 redis_client qemu
		else skipped vm-qemu-microvm-redis "no qemu-system-x86_64"; fi
	fi
	# The application's exit status is the init's last line; `wisp run`
	# returns it (its console watch reads the line, image_exit_line).
	# --image: an initramfs image becomes the initrd.
	timeout 120 $WISP run --kernel "$KERNEL" --image "$IMG/exit3.lz4" --cmdline "$CMDLINE_BASE" >"$TMP/exit.out" 2>&1 </dev/null
	code=$?
	tr -d '\r' <"$TMP/exit.out" >"$TMP/exit.txt"
	if grep -qx 'app-says-hi hello' "$TMP/exit.txt" && grep -qx 'wisp-init: exit 3' "$TMP/exit.txt" &&
		[ $code = 3 ]; then ok vm-exit-status-is-wisp-run-status
	else bad vm-exit-status-is-wisp-run-status "exit $code: $(tail -c 400 "$TMP/exit.txt")"; fi
	timeout 120 $WISP run --kernel "$KERNEL" --initrd "$IMG/term.lz4" --cmdline "$CMDLINE_BASE" >"$TMP/term.out" 2>&1 </dev/null
	code=$?
	tr -d '\r' <"$TMP/term.out" >"$TMP/term.txt"
	if grep -qx got-term "$TMP/term.txt" && grep -qx 'wisp-init: exit 7' "$TMP/term.txt" && [ $code = 7 ]; then ok vm-sigterm-forwarded
	else bad vm-sigterm-forwarded "exit $code: $(tail -c 400 "$TMP/term.txt")"; fi
	# --image: an ext4 image becomes the first disk, mounted as root.
	timeout 120 $WISP run --kernel "$KERNEL" --image "$IMG/user.ext4" --cmdline "$CMDLINE_BASE" >"$TMP/ext4.out" 2>&1 </dev/null
	code=$?
	tr -d '\r' <"$TMP/ext4.out" >"$TMP/ext4.txt"
	if grep -qx 'ext4-root 1234:567 /tmp' "$TMP/ext4.txt" && grep -qx 'wisp-init: exit 0' "$TMP/ext4.txt" && [ $code = 0 ]; then ok vm-ext4-root-user-workdir
	else bad vm-ext4-root-user-workdir "exit $code: $(tail -c 400 "$TMP/ext4.txt")"; fi
}

case $phase in
build) build_phase ;;
vm) vm_phase ;;
all) build_phase; vm_phase ;;
*) echo "usage: $0 [build|vm|all]" >&2; exit 2 ;;
esac
summary
