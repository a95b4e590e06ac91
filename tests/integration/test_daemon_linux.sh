#!/bin/bash
# A daemon Linux VM (docs/config.md, issue 12): `wisp create` with `wisp
# run`'s options sends the VM configuration to wispd, whose VMM builds it
# cold with the one builder: a Linux guest with 2 vCPUs, a disk, a TAP
# network and vsock, serving HTTP with the initramfs's busybox httpd,
# answered by curl from this host. The VM is then paused, resumed, saved,
# restored (the host sides given again, checked), cloned (its own MAC and
# CID) and migrated to a second wispd, with curl answering after each step
# and the disk read again by the guest (a CGI that drops its caches). A
# third wispd has a Linux pool class (linux:128M:2=1): a create of that
# class is served from its shell (which keeps its VM: irqchip, 2 vCPUs)
# and serves HTTP; one with another vCPU count goes cold. Needs a KVM that runs Linux guests: run
# it in the lab's host-root mode (tests/lab/in-lab.sh -- tests/suites.sh
# daemon-linux); elsewhere every check is SKIPPED. Needs root (the TAP).
cd "$(dirname "$0")/../.." || exit 1
SUITE=daemon-linux
. tests/integration/lib.sh
# A cold create or restore of a Linux VM on the lab's TCG L1 can take more
# than lib.sh's 30 s when the host is busy.
EXPECT_TIMEOUT=${EXPECT_TIMEOUT:-120}

check() { # check NAME CMD...: PASS if CMD succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name" "'$*' failed"; fi
}

BZ=${GUEST_KERNEL:-build/guest-kernel}/bzImage
RD=${GUEST_INITRD:-build/guest-linux/initrd.lz4}
names="linux-daemon-create linux-daemon-config linux-daemon-http linux-daemon-disk
	linux-daemon-vsock-socket linux-daemon-pause linux-daemon-paused-silent linux-daemon-resume
	linux-daemon-save linux-daemon-http-after-save linux-daemon-restore-no-host-side
	linux-daemon-restore-disk-size linux-daemon-restore linux-daemon-http-after-restore
	linux-daemon-disk-after-restore linux-daemon-clone linux-daemon-clone-identity
	linux-daemon-http-clone linux-daemon-migrate linux-daemon-http-after-migrate
	linux-daemon-migrate-mismatch
	linux-daemon-destroy linux-pool-fills linux-pool-create linux-pool-from-pool linux-pool-http
	linux-pool-refills linux-pool-cpus-mismatch-cold"
skip_all() {
	for n in $names; do skipped "$n" "$1"; done
	summary
	exit
}
$WISP check -q 2>/dev/null || skip_all "this KVM cannot run Linux guests (wisp check)"
[ -r "$BZ" ] && [ -r "$RD" ] || skip_all "no guest kernel or initrd (make guest-kernel guest-initrd)"
[ "$(id -u)" = 0 ] || skip_all "not root: cannot create a TAP"
command -v curl >/dev/null || skip_all "no curl"

RUN=$TMP/run
mkdir -p "$RUN"
export WISP_RUNTIME_DIR=$RUN
TAP=wdl$$
TAP=${TAP:0:15}
TAP2=wdk$$
TAP2=${TAP2:0:15}
TAP3=wdm$$
TAP3=${TAP3:0:15}
RUN2=$TMP/run2
RUN3=$TMP/run3
cleanup_daemon() {
	local r
	for r in "$RUN" "$RUN2" "$RUN3"; do
		[ -f "$r/wispd.lock" ] && kill -TERM "$(head -1 "$r/wispd.lock")" 2>/dev/null
	done
	ip link del "$TAP" 2>/dev/null
	ip link del "$TAP2" 2>/dev/null
	ip link del "$TAP3" 2>/dev/null
}
trap 'cleanup_daemon; rm -rf "$TMP"' EXIT
ip tuntap add "$TAP" mode tap && ip addr add 10.0.3.1/24 dev "$TAP" && ip link set "$TAP" up ||
	skip_all "cannot create the TAP $TAP"
for t in $TAP2 $TAP3; do # the same MAC as the first: the guest's ARP entry stays right
	ip tuntap add "$t" mode tap && ip link set "$t" address "$(cat /sys/class/net/$TAP/address)" &&
		ip link set "$t" up || skip_all "cannot create the TAP $t"
done
# The lab's L1 is slow (TCG): a cold restore of a Linux VM may take more
# than the default 10 s answer timeout there.
$WISP daemon --pool none --answer-timeout 60s >/dev/null || skip_all "wispd does not start"

# The disk: 1 MiB with a marker at 4 KiB, read by the guest into its page.
dd if=/dev/zero of="$TMP/disk.img" bs=1024 count=1024 2>/dev/null
printf 'wisp-daemon-disk' | dd of="$TMP/disk.img" bs=1 seek=4096 conv=notrunc 2>/dev/null

# What the guest runs (its init runs wisp_run="..." from the command line,
# so no double quote inside).
# /cgi-bin/disk reads the disk again on each request (caches dropped).
guest='ip addr add 10.0.3.15/24 dev eth0 && ip link set eth0 up && ip link set lo up &&
mkdir -p /www/cgi-bin && printf %s\\n \#!/bin/sh echo\ Content-Type:\ text/plain echo echo\ 3\ \>/proc/sys/vm/drop_caches dd\ if=/dev/vda\ bs=4096\ skip=1\ count=1\ 2\>/dev/null\|head\ -c\ 16 >/www/cgi-bin/disk && chmod 755 /www/cgi-bin/disk && echo wisp-daemon-linux cpus=$(grep -c ^processor /proc/cpuinfo) disk=$(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c 16) >/www/index.html &&
httpd -p 80 -h /www && echo httpd-up; while :; do sleep 1000; done'
guest=$(printf '%s' "$guest" | tr '\n' ' ')
expect linux-daemon-create 0 '^[0-9a-f]{12}$' '' -- $WISP create --name lx1 --cpus 2 --mem 128M \
	--kernel "$BZ" --initrd "$RD" --cmdline "console=ttyS0 reboot=t panic=-1 quiet wisp_run=\"$guest\"" \
	--disk "$TMP/disk.img" --net tap=$TAP --vsock "$TMP/v.sock"
curl -s --unix-socket "$RUN/wispd.sock" http://wispd/vms/lx1 >"$TMP/lx1.json"
if python3 -c "
import json, sys
c = json.load(open('$TMP/lx1.json'))['config']
ok = (c['kind'] == 'linux' and c['cpus'] == 2 and c['mem'] == 128 << 20 and
      [d['type'] for d in c['devices']] == ['virtio-blk', 'virtio-net', 'virtio-vsock'])
sys.exit(0 if ok else 1)"; then ok linux-daemon-config
else bad linux-daemon-config "$(head -c 600 "$TMP/lx1.json")"; fi
if wait_for 400 sh -c "$WISP console lx1 | grep -q httpd-up"; then
	expect linux-daemon-http 0 '^wisp-daemon-linux cpus=2 disk=wisp-daemon-disk$' '' -- curl -s -m 20 http://10.0.3.15/
	ok linux-daemon-disk
else
	bad linux-daemon-http "no httpd-up on the console: $($WISP console lx1 | tail -5 | tr '\n' '|')"
	skipped linux-daemon-disk "the guest did not come up"
fi
check linux-daemon-vsock-socket test -S "$TMP/v.sock"

# --- pause, resume, save, restore, clone, migrate (issue 12 Deliver 4) ---
api() { curl -s --unix-socket "$1/wispd.sock" "http://wispd$2"; }
http_ok() { curl -s -m 20 http://10.0.3.15/ | grep -q '^wisp-daemon-linux cpus=2 '; }
disk_is() { # the guest reads the disk's marker now; prints what it got on failure
	local got
	got=$(curl -s -m 20 http://10.0.3.15/cgi-bin/disk)
	[ "$got" = "$1" ] || { echo "disk gave '$got'" >&2; return 1; }
}
marker() { printf '%s' "$1" | dd of="$TMP/$2" bs=1 seek=4096 conv=notrunc 2>/dev/null; }
dev_field() { # dev_field RUNDIR VM TYPE FIELD: a device's field from GET /vms/VM
	api "$1" "/vms/$2" | python3 -c "
import json, sys
for d in json.load(sys.stdin)['config']['devices']:
    if d['type'] == '$3': print(d['$4'])"
}
expect linux-daemon-pause 0 '' '' -- $WISP pause lx1
if curl -s -m 3 http://10.0.3.15/ >/dev/null; then bad linux-daemon-paused-silent "a paused VM answered"
else ok linux-daemon-paused-silent; fi
$WISP resume lx1 >/dev/null
check linux-daemon-resume http_ok
expect linux-daemon-save 0 '^saved lx1 to ' '' -- $WISP save lx1 "$TMP/lx1.snap"
check linux-daemon-http-after-save http_ok
$WISP destroy lx1 >/dev/null

# A restore names every host side again; the guest's side comes from the snapshot.
expect linux-daemon-restore-no-host-side 125 '' \
	"^wisp: snapshot '$TMP/lx1.snap': device 0: the snapshot has a virtio-blk: give its host side again" -- \
	$WISP restore "$TMP/lx1.snap"
dd if=/dev/zero of="$TMP/small.img" bs=1024 count=64 2>/dev/null
expect linux-daemon-restore-disk-size 125 '' \
	"device 0: disk '$TMP/small.img' has 65536 bytes; the snapshot's had 1048576" -- \
	$WISP restore --disk "$TMP/small.img" --net tap=$TAP --vsock "$TMP/r1.sock" "$TMP/lx1.snap"
marker wisp-restored-dk disk.img
expect linux-daemon-restore 0 '^[0-9a-f]{12}$' '' -- $WISP restore --name r1 --disk "$TMP/disk.img" \
	--net tap=$TAP --vsock "$TMP/r1.sock" "$TMP/lx1.snap"
check linux-daemon-http-after-restore http_ok
check linux-daemon-disk-after-restore disk_is wisp-restored-dk

# A clone: its own disk (a copy), TAP and socket; a MAC and CID of its own.
cp "$TMP/disk.img" "$TMP/k1.img"
marker wisp-clone-dsk-1 k1.img
expect linux-daemon-clone 0 '^[0-9a-f]{12}$' '' -- $WISP clone -n 1 --name k --disk "$TMP/k{n}.img" \
	--net tap=$TAP2 --vsock "$TMP/k{n}.sock" "$TMP/lx1.snap"
m0=$(dev_field "$RUN" r1 virtio-net mac) c0=$(dev_field "$RUN" r1 virtio-vsock cid)
m1=$(dev_field "$RUN" k-1 virtio-net mac) c1=$(dev_field "$RUN" k-1 virtio-vsock cid)
if [ -n "$m0" ] && [ -n "$m1" ] && [ "$m0" != "$m1" ] && [ -n "$c1" ] && [ "$c0" != "$c1" ]; then
	ok linux-daemon-clone-identity
else bad linux-daemon-clone-identity "restored $m0 cid $c0, clone $m1 cid $c1"; fi
# The clone answers once the host's address moves to its TAP (which has
# the first TAP's MAC, so that the guest's ARP entry stays right).
$WISP destroy r1 >/dev/null
ip addr del 10.0.3.1/24 dev $TAP && ip addr add 10.0.3.1/24 dev $TAP2
check linux-daemon-http-clone disk_is wisp-clone-dsk-1

# Migration to a second wispd on this host, into a third TAP. A disk stays
# where it is: the target opens the path it is given (here a copy: the
# source's VMM holds its file locked), read again by the guest afterwards.
mkdir -p "$RUN2"
chmod 700 "$RUN2"
cp "$TMP/k1.img" "$TMP/m1.img"
marker wisp-migrated-dk m1.img
r2() { env WISP_RUNTIME_DIR=$RUN2 "$@"; }
# Migrations are authenticated (docs/migration.md#security): both hold this key.
KEY=$TMP/mig.key
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"
if r2 $WISP daemon --pool none --answer-timeout 60s >/dev/null; then
	# a receiver that was told other devices: the source runs on, the
	# receiver waits for another (destroyed here: it holds m1.img)
	r2 $WISP receive --name bad --listen 127.0.0.1:7602 --psk "$KEY" --kind linux --mem 128M --cpus 2 \
		--disk "$TMP/m1.img" --vsock "$TMP/bad.sock" >/dev/null
	expect linux-daemon-migrate-mismatch 125 '' 'device 1: the source.s VM has virtio-net there, the receive request virtio-vsock.*still runs here' -- \
		$WISP migrate --psk "$KEY" k-1 127.0.0.1:7602
	check linux-daemon-mismatch-receiver-waits sh -c "WISP_RUNTIME_DIR=$RUN2 $WISP list --json | python3 -c 'import json,sys; sys.exit(not [v for v in json.load(sys.stdin) if v[\"name\"] == \"bad\" and v[\"state\"] == \"receiving\"])'"
	r2 $WISP destroy bad >/dev/null
	r2 $WISP receive --name m1 --listen 127.0.0.1:7601 --psk "$KEY" --kind linux --mem 128M --cpus 2 \
		--disk "$TMP/m1.img" --net tap=$TAP3 --vsock "$TMP/m1.sock" >/dev/null
	expect linux-daemon-migrate 0 '^migrated k-1 to 127.0.0.1:7601' '' -- $WISP migrate --psk "$KEY" k-1 127.0.0.1:7601
else
	bad linux-daemon-migrate-mismatch "the second wispd did not start"
	bad linux-daemon-migrate "the second wispd did not start"
fi
ip addr del 10.0.3.1/24 dev $TAP2 && ip addr add 10.0.3.1/24 dev $TAP3
check linux-daemon-http-after-migrate disk_is wisp-migrated-dk
$WISP destroy k-1 >/dev/null 2>&1
expect linux-daemon-destroy 0 '' '' -- env WISP_RUNTIME_DIR=$RUN2 $WISP destroy m1

# --- a Linux pool class (issue 12: pool shells serve Linux guests) ---
mkdir -p "$RUN3"
chmod 700 "$RUN3"
r3() { env WISP_RUNTIME_DIR=$RUN3 "$@"; }
pool_ready() { r3 $WISP stats | grep -q 'pool linux:128M:2 ready 1/1'; }
cp "$TMP/disk.img" "$TMP/p1.img"
if r3 $WISP daemon --pool linux:128M:2=1 --answer-timeout 60s >/dev/null; then
	check linux-pool-fills wait_for 120 pool_ready
	expect linux-pool-create 0 '^[0-9a-f]{12}$' '' -- env WISP_RUNTIME_DIR=$RUN3 $WISP create --name p1 --cpus 2 --mem 128M \
		--kernel "$BZ" --initrd "$RD" --cmdline "console=ttyS0 reboot=t panic=-1 quiet wisp_run=\"$guest\"" \
		--disk "$TMP/p1.img" --net tap=$TAP3
	if api "$RUN3" /vms/p1 | python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)["from_pool"])'; then
		ok linux-pool-from-pool
	else bad linux-pool-from-pool "$(api "$RUN3" /vms/p1 | head -c 400)"; fi
	if wait_for 400 sh -c "WISP_RUNTIME_DIR=$RUN3 $WISP console p1 | grep -q httpd-up"; then
		check linux-pool-http http_ok
	else
		bad linux-pool-http "no httpd-up on the console: $(r3 $WISP console p1 | tail -5 | tr '\n' '|')"
	fi
	check linux-pool-refills wait_for 120 pool_ready
	# Another vCPU count is another class: this one goes cold.
	r3 $WISP create --name p2 --cpus 1 --mem 128M --kernel "$BZ" --initrd "$RD" \
		--cmdline "console=ttyS0 reboot=t panic=-1 quiet" >/dev/null
	if api "$RUN3" /vms/p2 | python3 -c 'import json, sys; v = json.load(sys.stdin); sys.exit(v["from_pool"] or v["cpus"] != 1)'; then
		ok linux-pool-cpus-mismatch-cold
	else bad linux-pool-cpus-mismatch-cold "$(api "$RUN3" /vms/p2 | head -c 400)"; fi
	r3 $WISP destroy p1 >/dev/null
	r3 $WISP destroy p2 >/dev/null
else
	for n in linux-pool-fills linux-pool-create linux-pool-from-pool linux-pool-http linux-pool-refills \
		linux-pool-cpus-mismatch-cold; do bad $n "the wispd with a Linux pool class did not start"; done
fi
summary
