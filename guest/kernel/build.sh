#!/bin/bash
# Build (or find in the cache) Wisp's guest kernel: Debian's linux-source-6.1,
# `make ARCH=x86_64 tinyconfig` + microvm.config merged with merge_config.sh -n.
#
# A build takes 3-5 minutes on 2 cores, so the result lives outside the clone,
# in $WISP_CACHE (default ~/.cache/wisp), under a key hashing everything that
# goes into it: the fragment, this script, the source package's version and
# the compiler. The whole built tree is kept (1.5 GB) because module builds
# need it: `make -C "$(guest/kernel/build.sh --tree)" M=$PWD modules`.
#
# Usage: build.sh            build if needed; link build/guest-kernel/ to it
#        build.sh --tree     print the tree's path (build first if needed)
#        build.sh --key      print the cache key only (no build)
set -euo pipefail
export ARCH=x86_64
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src_tar=/usr/src/linux-source-6.1.tar.xz
cache=${WISP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}
log() { echo "guest-kernel: $*" >&2; }
. "$here/progress.sh"
die() { echo "guest-kernel: error: $*" >&2; exit 1; }

[ -r "$src_tar" ] || die "$src_tar missing (scripts/deps.sh lab installs linux-source-6.1)"
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || stat -c %s "$src_tar")
key=$( { cat "$here/microvm.config" "$here/build.sh"; echo "$src_ver"; gcc --version | head -1; } |
	sha256sum | cut -c1-16)
dir=$cache/kernel-$key
tree=$dir/linux-source-6.1

case "${1:-}" in
--key) echo "$key"; exit 0 ;;
--tree | "") ;;
*) die "unknown argument '$1' (use --tree or --key)" ;;
esac

build() {
	mkdir -p "$cache"
	local tmp=$dir.partial
	rm -rf "$tmp"
	mkdir -p "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	# Whoever asks for the tree (make guest-kernel, a module build, a test)
	# gets the build tools installed first.
	"$root/scripts/deps.sh" lab
	log "building kernel $key in $dir (3-5 minutes; cached afterwards)"
	local t0=$SECONDS
	tar -xJf "$src_tar" -C "$tmp"
	local t=$tmp/linux-source-6.1 j
	j=$(nproc)
	make -C "$t" -s ARCH=x86_64 tinyconfig >/dev/null
	(cd "$t" && KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -n -O . .config "$here/microvm.config" >"$tmp/merge.log" 2>&1) ||
		{ cat "$tmp/merge.log" >&2; die "merge_config.sh failed"; }
	# Every requested option must have stuck: a dependency we forgot would
	# otherwise silently drop it.
	local bad=0 line sym
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" "$t/.config" || { log "option did not stick: $line (got: $(grep -E "^(# )?${line%%=*}[= ]" "$t/.config" || echo absent))"; bad=1; } ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
			grep -qE "^$sym=" "$t/.config" && { log "option should be off: $sym"; bad=1; } ;;
		esac
	done <"$here/microvm.config"
	[ $bad = 0 ] || die "config fragment did not apply (see above)"
	# Not -s: each "  CC ..." line in the log is a step of the progress line.
	make -C "$t" ARCH=x86_64 -j"$j" bzImage vmlinux >"$tmp/build.log" 2>&1 &
	build_progress guest-kernel "$tmp/build.log" $! "$cache/kernel-steps" ||
		{ tail -40 "$tmp/build.log" >&2; die "kernel build failed (log: $tmp/build.log)"; }
	# `make modules` with no in-tree modules writes Module.symvers, which
	# out-of-tree module builds need to resolve the kernel's symbols.
	make -C "$t" -s ARCH=x86_64 -j"$j" modules >>"$tmp/build.log" 2>&1 ||
		{ tail -40 "$tmp/build.log" >&2; die "make modules failed"; }
	strip -o "$tmp/vmlinux" "$t/vmlinux"
	cp "$t/arch/x86/boot/bzImage" "$tmp/bzImage"
	cp "$t/.config" "$tmp/config"
	echo "$key $src_ver $(date -u +%FT%TZ) $((SECONDS - t0))s" >"$tmp/BUILT"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
	log "built in $((SECONDS - t0)) s: $(stat -c %s "$dir/bzImage") B bzImage"
}

mkdir -p "$cache"
exec 9>"$cache/kernel-$key.lock"
flock 9
[ -f "$dir/BUILT" ] || build
flock -u 9

if [ "${1:-}" = --tree ]; then
	echo "$tree"
	exit 0
fi
# Stable names inside the clone for the Makefile, the lab and the user.
out=$root/build/guest-kernel
mkdir -p "$out"
ln -sfn "$dir/bzImage" "$out/bzImage"
ln -sfn "$dir/vmlinux" "$out/vmlinux"
ln -sfn "$tree" "$out/tree"
echo "$out"
