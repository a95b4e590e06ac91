#!/bin/bash
# Build the lab's L1 initramfs: busybox-static, l1-init as /init, and the
# Debian kernel's modules for KVM on AMD (irqbypass, kvm, ccp, kvm-amd with
# nested=1 npt=1), for a 9p share over virtio-pci, and tun and vhost-net
# (the virtio-net tests and benchmark), in dependency order.
# Everything else (Wisp, the guest kernel, the tests, QEMU for comparisons)
# reaches L1 through the 9p share, so this archive stays small (a few MB)
# and rarely changes. Cached under $WISP_CACHE keyed by its inputs.
#
# Usage: mkl1.sh  -> prints "KERNEL_IMAGE L1_CPIO"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}
die() { echo "lab: error: $*" >&2; exit 1; }

# The L1 kernel: Debian's stock one (linux-image-amd64), newest first.
ver=""
for d in $(ls -d /lib/modules/*/ 2>/dev/null | sort -Vr); do
	v=$(basename "$d")
	if [ -f "/boot/vmlinuz-$v" ] && [ -n "$(modinfo -k "$v" -F filename kvm-amd 2>/dev/null)" ]; then
		ver=$v
		break
	fi
done
[ -n "$ver" ] || die "no Debian kernel with kvm-amd found in /boot and /lib/modules (scripts/deps.sh lab installs linux-image-amd64)"
[ -r "/boot/vmlinuz-$ver" ] || die "/boot/vmlinuz-$ver is not readable"
busybox=/bin/busybox
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (install busybox-static)"

key=$( { cat "$here/mkl1.sh" "$here/l1-init" "$here/mkcpio.c"; echo "$ver"; md5sum <"$busybox"; } | sha256sum | cut -c1-16)
out=$cache/lab-l1-$key.cpio
if [ ! -f "$out" ]; then
	mkdir -p "$cache"
	mods=$(mktemp -d)
	trap 'rm -rf "$mods"' EXIT
	# Our own cpio writer: no guest kernel tree (gen_init_cpio) and no root
	# (a device node) needed, so `make demo` builds this in seconds.
	gcc -O2 -Wall -Werror -o "$mods/mkcpio" "$here/mkcpio.c" || die "cannot build mkcpio"
	gen=$mods/mkcpio
	# Modules with their dependencies, each after what it needs.
	declare -A done_mod=()
	add_mod() {
		local m=$1 args=${2:-} f d
		[ -n "${done_mod[$m]:-}" ] && return
		f=$(modinfo -k "$ver" -F filename "$m" 2>/dev/null) || die "module $m not found for $ver"
		case "$f" in (builtin*|"") done_mod[$m]=1; return ;; esac
		for d in $(modinfo -k "$ver" -F depends "$m" | tr ',' ' '); do add_mod "$d"; done
		case "$f" in
		*.ko) cp "$f" "$mods/$m.ko" ;;
		*.ko.xz) xz -dc "$f" >"$mods/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$mods/$m.ko" ;;
		*) die "unknown module format $f" ;;
		esac
		echo "$m $args" >>"$mods/order"
		done_mod[$m]=1
	}
	: >"$mods/order"
	add_mod irqbypass
	add_mod kvm
	add_mod ccp
	add_mod kvm-amd "nested=1 npt=1"
	for m in virtio_ring virtio virtio_pci 9pnet_virtio 9p; do add_mod "$m"; done
	# TAP interfaces for virtio-net (Wisp's and QEMU's), and vhost-net for
	# QEMU's in-kernel virtio-net in the benchmark's comparison.
	add_mod tun
	add_mod vhost_net
	# The /dev/console node is written into the archive, not created;
	# without that node init would start with no stdout.
	{
		for d in /bin /sbin /usr /usr/bin /usr/sbin /proc /sys /dev /tmp /lab /mod; do
			echo "dir $d 755 0 0"
		done
		echo "nod /dev/console 600 0 0 c 5 1"
		echo "file /bin/busybox $busybox 755 0 0"
		"$busybox" --list-full | while read -r a; do
			[ "$a" = bin/busybox ] || echo "slink /$a /bin/busybox 777 0 0"
		done
		echo "file /init $here/l1-init 755 0 0"
		for f in "$mods"/*.ko "$mods"/order; do echo "file /mod/$(basename "$f") $f 644 0 0"; done
	} >"$mods/spec"
	# Uncompressed: TCG would spend longer unpacking than loading it.
	"$gen" <"$mods/spec" >"$out.tmp"
	mv "$out.tmp" "$out"
fi
echo "/boot/vmlinuz-$ver $out"
