#!/bin/bash
# The KVM lab, host side. Boots L1 -- Debian's stock kernel under QEMU TCG
# with an emulated AMD SVM + NPT CPU, KVM loaded (kvm-amd nested=1 npt=1) --
# and in it runs every Linux-guest test of tests/lab/tests/ against Wisp
# (L2 = the guest kernel under Wisp on L1's KVM). One L1 boot serves all
# tests. Prints a PASS/FAIL/SKIPPED line per check, how many L2 boots
# passed, and exits non-zero on any failure.
#
# Usage: tests/lab/run.sh          (make lab-test builds the inputs first)
# Env: LAB_FILTER=REGEX (test files to run), LAB_BENCH_ROUNDS=N (default 3),
#      LAB_VIRTIO_ROUNDS=N, LAB_BLK_MIB=N, LAB_NET_MIB=N (virtio benchmark),
#      LAB_SMP=N (L1 vCPUs, default 1), LAB_TIMEOUT=S (whole L1 run, 1500),
#      WISP_STATIC, GUEST_KERNEL, GUEST_INITRD (inputs, defaults in build/).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
here=tests/lab
B=${BUILD:-build}
out=$B/lab
share=$out/share
log=$out/l1.log
wisp=${WISP_STATIC:-$B/wisp} # static: runs in L1's busybox initramfs
kdir=${GUEST_KERNEL:-$B/guest-kernel}
initrd=${GUEST_INITRD:-$B/guest-linux/initrd.lz4}

die() { echo "FAIL: lab: $*"; echo "lab: 0 passed, 1 failed, 0 skipped"; exit 1; }

# Prerequisites are installed by `scripts/deps.sh lab`; if they are still
# missing, that is a failure, not a skip: the lab needs no /dev/kvm.
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (scripts/deps.sh lab)"
command -v gcc >/dev/null || die "gcc missing"
for f in "$wisp" "$kdir/bzImage" "$kdir/vmlinux" "$initrd"; do
	[ -e "$f" ] || die "$f missing (run 'make lab-test', which builds it)"
done
. $here/l1.sh
read -r L1_KERNEL L1_INITRD < <($here/mkl1.sh) || die "cannot build the L1 initramfs"

# Stage the share: plain copies, since 9p shows host symlinks as symlinks.
rm -rf "$share"
mkdir -p "$share/tests" "$share/qemu/bin" "$share/qemu/lib" "$share/qemu/share"
cp "$wisp" "$share/wisp"
cp -L "$kdir/bzImage" "$kdir/vmlinux" "$share/"
cp -L "$initrd" "$share/initrd"
cp $here/lib.sh $here/l1-run.sh "$share/"
cp $here/tests/*.sh "$share/tests/"
gcc -O2 -static -Wall -Werror -D_GNU_SOURCE -o "$share/bootclock" $here/bootclock.c || die "cannot build bootclock"
# QEMU for the comparison: the binary, every library it links and the
# microvm firmware, run in L1 through the bundled dynamic loader.
q=$(command -v qemu-system-x86_64)
cp "$q" "$share/qemu/bin/"
for l in $(ldd "$q" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
	cp -L "$l" "$share/qemu/lib/"
done
for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin kvmvapic.bin; do
	[ -e /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$share/qemu/share/"
done

# Staging hooks: a test that needs more than Wisp, the kernel and the
# standard initrd (a module, an app, its own initrd) prepares it here.
for h in $here/stage/*.sh; do
	[ -e "$h" ] || continue
	SHARE=$share KDIR=$(readlink -f "$kdir/tree") MKINITRAMFS=guest/linux/mkinitramfs.sh \
		bash "$h" >"$out/stage-$(basename "$h" .sh).log" 2>&1 ||
		die "staging hook $h failed: $(tail -5 "$out/stage-$(basename "$h" .sh).log")"
done

cat >"$share/qemu/qemu" <<'QEMU'
#!/bin/sh
d=$(dirname "$0")
exec "$d/lib/ld-linux-x86-64.so.2" --library-path "$d/lib" "$d/bin/qemu-system-x86_64" -L "$d/share" "$@"
QEMU
chmod +x "$share/qemu/qemu"

args=""
[ -n "${LAB_FILTER:-}" ] && args="$args LAB_FILTER=$LAB_FILTER"
for v in LAB_BENCH_ROUNDS LAB_VIRTIO_ROUNDS LAB_BLK_MIB LAB_NET_MIB; do
	[ -n "${!v:-}" ] && args="$args $v=${!v}"
done
echo "lab: L1 = $L1_KERNEL under QEMU TCG (-cpu max: AMD SVM + NPT), log in $log"
l1_slot lab || die "cannot take a lab slot"
rm -f "$log.tmp"
l1_boot "${LAB_TIMEOUT:-1500}" 2G "$args" \
	-virtfs local,path="$share",mount_tag=lab,security_model=none,id=lab |
	while IFS= read -r l; do
		echo "[$(l1_stamp)] $l" >>"$log.tmp"
		case "$l" in
		PASS:* | FAIL:* | SKIPPED:* | bench:* | demo:*) echo "$l" ;;
		*lab-l1:*) echo "lab-l1:${l#*lab-l1:}" ;; # may follow firmware text
		esac
	done
mv "$log.tmp" "$log"
total=$(l1_stamp)

pass=$(grep -c '^\[[0-9.]*\] PASS: ' "$log")
fail=$(grep -c '^\[[0-9.]*\] FAIL: ' "$log")
skip=$(grep -c '^\[[0-9.]*\] SKIPPED: ' "$log")
boots=$(grep -c '^\[[0-9.]*\] PASS: .*\[L2 boot' "$log")
if ! grep -q 'lab-l1: tests finished' "$log"; then
	echo "FAIL: lab: L1 did not finish its tests (see $log):"
	tail -15 "$log" | sed 's/^/  | /'
	fail=$((fail + 1))
fi
l1_up=$(sed -n 's/^\[\([0-9.]*\)\] .*lab-l1: init at.*/\1/p' "$log" | head -1)
echo "lab: L1 reached /init after ${l1_up:-?} s; whole run ${total} s"
echo "lab: $boots L2 boots passed"
echo "lab: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
