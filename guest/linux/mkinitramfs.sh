#!/bin/bash
# Build a Tinyx-style initramfs for Wisp's Linux guests: busybox-static (from
# Debian) with all its applets, guest/linux/init as /init, a /dev/console
# node (without it init starts with no stdout), and any extra files.
#
# Usage: mkinitramfs.sh OUT.cpio.lz4 [HOST_PATH:GUEST_PATH ...]
# Needs the guest kernel tree (guest/kernel/build.sh) for gen_init_cpio, which
# writes device nodes without root; the archive is LZ4 (legacy format, as
# the kernel's RD_LZ4 unpacker wants), the fastest to unpack.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: mkinitramfs.sh OUT [HOST_PATH:GUEST_PATH ...]}
shift
die() { echo "mkinitramfs: error: $*" >&2; exit 1; }
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox missing (scripts/deps.sh lab installs busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || die "$busybox is not statically linked (install busybox-static)"
command -v lz4 >/dev/null || die "lz4 missing (scripts/deps.sh lab)"
tree=$("$here/../kernel/build.sh" --tree)
gen=$tree/usr/gen_init_cpio
[ -x "$gen" ] || die "$gen missing: is the guest kernel built?"

spec=$(mktemp)
trap 'rm -f "$spec"' EXIT
{
	for d in /dev /proc /sys /tmp /run /root /etc /bin /sbin /usr /usr/bin /usr/sbin; do
		echo "dir $d 755 0 0"
	done
	echo "nod /dev/console 600 0 0 c 5 1"
	echo "nod /dev/null 666 0 0 c 1 3"
	echo "file /bin/busybox $busybox 755 0 0"
	"$busybox" --list-full | while read -r a; do
		[ "$a" = bin/busybox ] || echo "slink /$a /bin/busybox 777 0 0"
	done
	echo "file /init $here/init 755 0 0"
	echo "file /etc/profile $here/profile 644 0 0"
	for m in "$@"; do
		src=${m%%:*} dst=${m#*:}
		[ -e "$src" ] || die "extra file '$src' missing"
		parent=$(dirname "$dst")
		while [ "$parent" != / ]; do echo "dir $parent 755 0 0"; parent=$(dirname "$parent"); done | tac
		mode=$(stat -c %a "$src")
		echo "file $dst $src $mode 0 0"
	done
} | awk '!($1 == "dir" && seen[$2]++)' >"$spec"
"$gen" "$spec" | lz4 -l -9 -q -f - "$out.tmp"
mv "$out.tmp" "$out"
