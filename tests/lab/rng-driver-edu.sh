#!/bin/bash
# The wisp_rng driver and the rng app in a real Linux guest, without Wisp:
# QEMU (TCG, no KVM needed) boots the guest kernel with QEMU's `edu` teaching
# device, the driver is bound to it through new_id, and rng-guest.sh checks
# probe, /dev/wisp-rng, /dev/hwrng, seeding calls, unbind with an open file
# and unload. The device's semantics are tested against Wisp in the KVM lab;
# this tests the driver's mechanics on any machine.
#
# Usage: tests/lab/rng-driver-edu.sh   (KDIR: the guest kernel tree; default
# from guest/kernel/build.sh --tree). SKIPPED when there is no tree or QEMU.
cd "$(dirname "$0")/../.." || exit 1
pass=0 fail=0
skip() { echo "SKIPPED: rng-driver-edu: $1"; exit 0; }

if [ -z "${KDIR:-}" ] && [ -x guest/kernel/build.sh ]; then
	KDIR=$(guest/kernel/build.sh --tree) || { echo "FAIL: rng-driver-edu: guest kernel build failed"; exit 1; }
fi
[ -n "${KDIR:-}" ] && [ -f "$KDIR/arch/x86/boot/bzImage" ] || skip "no guest kernel tree (set KDIR or build it with guest/kernel/build.sh)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
busybox=$(command -v busybox) || skip "no busybox"
file -L "$busybox" | grep -q 'statically linked' || skip "$busybox is not static (install busybox-static)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/drv" "$TMP/root/bin" "$TMP/root/dev" "$TMP/root/proc" "$TMP/root/sys" "$TMP/root/tmp"
cp guest/linux/rng-driver/wisp_rng.c guest/linux/rng-driver/wisp_rng_ioctl.h guest/linux/rng-driver/Kbuild "$TMP/drv/"
if ! make -s -C "$KDIR" M="$TMP/drv" modules >"$TMP/build.log" 2>&1; then
	echo "FAIL: rng-driver-edu: module build: $(tail -5 "$TMP/build.log")"; exit 1
fi
if grep -qE 'warning|error' "$TMP/build.log"; then
	echo "FAIL: rng-driver-edu: module build warnings: $(grep -m3 -E 'warning|error' "$TMP/build.log")"; exit 1
fi
${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$TMP/root/bin/rng" guest/linux/rng-app/rng.c || exit 1
cp "$TMP/drv/wisp_rng.ko" "$TMP/root/"
cp tests/lab/rng-guest.sh "$TMP/root/"
cp "$busybox" "$TMP/root/bin/busybox"
for c in $("$busybox" --list); do [ "$c" = busybox ] || ln -s busybox "$TMP/root/bin/$c"; done
cat >"$TMP/root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
sh /rng-guest.sh edu /wisp_rng.ko
reboot -f
INIT
chmod +x "$TMP/root/init"
(cd "$TMP/root" && mknod dev/console c 5 1 && find . | cpio -o -H newc 2>/dev/null | gzip >"$TMP/initrd.gz")

timeout -k 5 180 qemu-system-x86_64 -accel tcg -M pc -m 256 -nodefaults -nographic -serial stdio \
	-no-reboot -kernel "$KDIR/arch/x86/boot/bzImage" -initrd "$TMP/initrd.gz" \
	-append "console=ttyS0 reboot=t panic=-1 quiet" -device edu </dev/null >"$TMP/console" 2>&1
# Firmware escape codes may precede the first line: match inside lines.
tr -d '\r' <"$TMP/console" | grep -aoE '(PASS|FAIL): .*' | sed 's/^\(PASS\|FAIL\): /\1: edu-/'
summary=$(tr -d '\r' <"$TMP/console" | grep -aoE 'rng-guest: [0-9]+ passed, [0-9]+ failed')
if [ -z "$summary" ]; then
	echo "FAIL: rng-driver-edu: the guest did not finish; console tail: $(tail -c 600 "$TMP/console")"
	exit 1
fi
pass=$(echo "$summary" | sed 's/.*: \([0-9]*\) passed.*/\1/')
fail=$(echo "$summary" | sed 's/.* \([0-9]*\) failed.*/\1/')
echo "rng-driver-edu: $pass passed, $fail failed"
[ "$fail" = 0 ]
