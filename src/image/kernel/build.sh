#!/bin/bash
# Build (or find in the cache) the guest kernel with a per-image fragment:
# Debian's linux-source-6.1, tinyconfig, guest/kernel/microvm.config and
# FRAGMENT merged in allnoconfig mode (merge_config.sh -n), like the
# default kernel, so nothing else turns on. Only bzImage, vmlinux and the
# .config are kept (no module tree): ~/.cache/wisp/kernel-image-KEY/.
#
# Usage: src/image/kernel/build.sh FRAGMENT   prints the directory holding
#        bzImage, vmlinux and config; links build/guest-kernel-NAME to it.
set -euo pipefail
export ARCH=x86_64
root=$(cd "$(dirname "$0")/../../.." && pwd)
frag=${1:?usage: build.sh FRAGMENT}
[ -r "$frag" ] || { echo "image-kernel: error: no fragment $frag" >&2; exit 1; }
frag=$(cd "$(dirname "$frag")" && pwd)/$(basename "$frag")
src_tar=/usr/src/linux-source-6.1.tar.xz
[ -r "$src_tar" ] || { echo "image-kernel: error: $src_tar missing (scripts/deps.sh lab)" >&2; exit 1; }
cache=${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}
base=$root/guest/kernel/microvm.config
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$base" "$frag" "$0"; echo "$ver"; gcc --version | head -1; } | sha256sum | cut -c1-16)
dir=$cache/kernel-image-$key
name=$(basename "$frag" .config)

mkdir -p "$cache"
exec 9>"$dir.lock"
flock 9
if [ ! -f "$dir/BUILT" ]; then
	tmp=$dir.partial
	rm -rf "$tmp"
	mkdir -p "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	echo "image-kernel: building $name kernel $key (3-5 minutes; cached afterwards)" >&2
	t0=$SECONDS
	tar -xJf "$src_tar" -C "$tmp"
	t=$tmp/linux-source-6.1
	make -C "$t" -s tinyconfig >/dev/null
	(cd "$t" && scripts/kconfig/merge_config.sh -n -O . .config "$base" "$frag" >"$tmp/merge.log" 2>&1) ||
		{ cat "$tmp/merge.log" >&2; echo "image-kernel: error: merge_config.sh failed" >&2; exit 1; }
	# Each option asked for must be in the result (a missing dependency
	# would drop it silently).
	grep -h '^CONFIG_' "$base" "$frag" | while IFS= read -r l; do
		grep -qxF "$l" "$t/.config" || { echo "image-kernel: error: option did not stick: $l" >&2; exit 1; }
	done
	make -C "$t" -s -j"$(nproc)" bzImage vmlinux >"$tmp/build.log" 2>&1 ||
		{ tail -30 "$tmp/build.log" >&2; exit 1; }
	cp "$t/arch/x86/boot/bzImage" "$t/.config" "$tmp/"
	strip -o "$tmp/vmlinux" "$t/vmlinux"
	mv "$tmp/.config" "$tmp/config"
	rm -rf "$t"
	echo "$key $ver $((SECONDS - t0))s" >"$tmp/BUILT"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
fi
out=$root/build/guest-kernel-$name
mkdir -p "$out"
ln -sfn "$dir/bzImage" "$out/bzImage"
ln -sfn "$dir/vmlinux" "$out/vmlinux"
ln -sfn "$dir/config" "$out/config"
echo "$out"
