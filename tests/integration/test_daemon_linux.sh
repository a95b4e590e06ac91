#!/bin/bash
# A daemon Linux VM (docs/config.md, issue 12): `wisp create` with `wisp
# run`'s options sends the VM configuration to wispd, whose VMM builds it
# cold with the one builder: a Linux guest with 2 vCPUs, a disk, a TAP
# network and vsock, serving HTTP with the initramfs's busybox httpd,
# answered by curl from this host. Needs a KVM that runs Linux guests: run
# it in the lab's host-root mode (tests/lab/in-lab.sh -- tests/suites.sh
# daemon-linux); elsewhere every check is SKIPPED. Needs root (the TAP).
cd "$(dirname "$0")/../.." || exit 1
SUITE=daemon-linux
. tests/integration/lib.sh

check() { # check NAME CMD...: PASS if CMD succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name" "'$*' failed"; fi
}

BZ=${GUEST_KERNEL:-build/guest-kernel}/bzImage
RD=${GUEST_INITRD:-build/guest-linux/initrd.lz4}
names="linux-daemon-create linux-daemon-config linux-daemon-http linux-daemon-disk
	linux-daemon-vsock-socket linux-daemon-pause-refused linux-daemon-save-refused
	linux-daemon-destroy"
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
cleanup_daemon() {
	[ -f "$RUN/wispd.lock" ] && kill -TERM "$(head -1 "$RUN/wispd.lock")" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
}
trap 'cleanup_daemon; rm -rf "$TMP"' EXIT
ip tuntap add "$TAP" mode tap && ip addr add 10.0.3.1/24 dev "$TAP" && ip link set "$TAP" up ||
	skip_all "cannot create the TAP $TAP"
$WISP daemon --pool none >/dev/null || skip_all "wispd does not start"

# The disk: 1 MiB with a marker at 4 KiB, read by the guest into its page.
dd if=/dev/zero of="$TMP/disk.img" bs=1024 count=1024 2>/dev/null
printf 'wisp-daemon-disk' | dd of="$TMP/disk.img" bs=1 seek=4096 conv=notrunc 2>/dev/null

# What the guest runs (its init runs wisp_run="..." from the command line,
# so no double quote inside).
guest='ip addr add 10.0.3.15/24 dev eth0 && ip link set eth0 up && ip link set lo up &&
mkdir -p /www && echo wisp-daemon-linux cpus=$(grep -c ^processor /proc/cpuinfo) disk=$(dd if=/dev/vda bs=4096 skip=1 count=1 2>/dev/null | head -c 16) >/www/index.html &&
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
expect linux-daemon-pause-refused 125 '' 'pausing a daemon VM of 2 vCPUs is not supported yet' -- $WISP pause lx1
expect linux-daemon-save-refused 125 '' 'snapshots of daemon VMs with a Linux guest' -- $WISP save lx1 "$TMP/lx1.snap"
expect linux-daemon-destroy 0 '' '' -- $WISP destroy lx1
summary
