# Lab staging hook (run on the host by tests/lab/run.sh, from the repository
# root, with SHARE, KDIR and MKINITRAMFS set): the inputs of
# tests/lab/tests/70-rng-device.sh. Builds the wisp_rng module against the
# guest kernel tree and the static rng app, and packs them with rng-guest.sh
# and the numbers seed 42 must give into $SHARE/initrd-rng.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/drv"
cp guest/linux/rng-driver/wisp_rng.c guest/linux/rng-driver/wisp_rng_ioctl.h guest/linux/rng-driver/Kbuild "$tmp/drv/"
make -s -C "$KDIR" M="$tmp/drv" modules >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$tmp/rng" guest/linux/rng-app/rng.c
python3 tests/tools/rng_ref.py 42 16 >"$tmp/expected"
"$MKINITRAMFS" "$SHARE/initrd-rng" "$tmp/drv/wisp_rng.ko:/wisp_rng.ko" "$tmp/rng:/bin/rng" \
	tests/lab/rng-guest.sh:/rng-guest.sh tests/lab/rng-demo.sh:/rng-demo.sh "$tmp/expected:/rng-expected-42"
cp "$tmp/expected" "$SHARE/rng-expected-42"
