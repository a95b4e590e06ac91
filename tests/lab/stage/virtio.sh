# Lab staging hook (run on the host by tests/lab/run.sh, from the repository
# root, with SHARE, KDIR and MKINITRAMFS set): the inputs of
# tests/lab/tests/75-virtio.sh and 95-virtio-bench.sh.
#  - $SHARE/initrd-virtio: the standard initramfs plus vsock-echo, wbench and
#    virtio-guest.sh (the guest side of each test);
#  - for L1: wbench (the other end of the network benchmark), tapctl (a
#    persistent TAP), uds (a unix-socket peer for the console and vsock);
#  - $SHARE/ext4.img: an empty 16 MiB ext4 file system.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc="${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static"
$cc -o "$tmp/vsock-echo" guest/linux/vsock-echo/vsock-echo.c
$cc -o "$SHARE/wbench" guest/linux/wbench/wbench.c
$cc -o "$SHARE/tapctl" tests/lab/tapctl.c
$cc -o "$SHARE/uds" tests/integration/uds.c
"$MKINITRAMFS" "$SHARE/initrd-virtio" "$tmp/vsock-echo:/bin/vsock-echo" "$SHARE/wbench:/bin/wbench" \
	tests/lab/virtio-guest.sh:/virtio-guest.sh
mkfs=$(command -v mkfs.ext4 || echo /sbin/mkfs.ext4)
rm -f "$SHARE/ext4.img"
"$mkfs" -q -F -L wisp "$SHARE/ext4.img" 16M
