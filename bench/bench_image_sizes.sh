#!/bin/bash
# `make bench-image`, the sizes (on this host: it needs the Debian mirror):
# each wisp image (compressed, and unpacked) against the same application
# installed with `debootstrap --variant=minbase --include=PKG` and, when one
# is available locally, its container image (podman/docker, unpacked with
# umoci; none is pulled). Writes build/bench/image-sizes.csv.
cd "$(dirname "$0")/.." || exit 1
B=${BUILD:-build}
IMG=${IMAGE_DIR:-$B/images}
OUT=$B/bench/image-sizes.csv
CACHE=${WISP_CACHE:-$HOME/.cache/wisp}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$B/bench" "$CACHE/debootstrap/debs"
echo "metric,app,kind,value" >"$OUT"
for app in redis:redis-server nginx:nginx-light memcached:memcached; do
	name=${app%%:*} pkg=${app#*:}
	img=$IMG/$name.lz4
	[ -r "$img" ] || { echo "bench-image: $img missing (make image-test-images)"; exit 1; }
	echo "bytes,$name,wisp-initramfs,$(stat -c %s "$img")" >>"$OUT"
	echo "bytes,$name,wisp-unpacked,$(lz4 -dc "$img" | wc -c)" >>"$OUT"
	# debootstrap minbase + the package: the same application in a plain
	# Debian root (what a VM image without Tinyx would hold). Cached.
	root=$CACHE/debootstrap/$pkg
	if [ ! -f "$root.done" ]; then
		rm -rf "$root"
		echo "bench-image: debootstrap --variant=minbase --include=$pkg (a few minutes, cached)"
		if debootstrap --variant=minbase --include="$pkg" --cache-dir="$CACHE/debootstrap/debs" \
			bookworm "$root" "$MIRROR" >"$root.log" 2>&1; then
			du -sb --one-file-system "$root" | cut -f1 >"$root.done"
		else
			echo "bench-image: debootstrap $pkg failed (see $root.log)"
		fi
	fi
	[ -f "$root.done" ] && echo "bytes,$name,debootstrap-minbase,$(cat "$root.done")" >>"$OUT"
	# A local container image of the application, if there is one.
	ref=""
	for tool in podman docker; do
		command -v $tool >/dev/null || continue
		ref=$($tool images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -E "(^|/)$name:" | head -1)
		[ -n "$ref" ] && { echo "bytes,$name,container-$tool,$($tool image inspect --format '{{.Size}}' "$ref")" >>"$OUT"; break; }
	done
	[ -n "$ref" ] || echo "bench-image: no local container image of $name (none is pulled)"
done
echo "bench-image: wrote $OUT"
cat "$OUT"
