#!/bin/sh
# Install the Debian packages a Wisp task needs, by name, skipping those
# already installed. Usage: scripts/deps.sh GROUP...  (build test bench l1 lab fuzz image oci)
# l1 is what the KVM lab's L1 needs (make demo without KVM); lab adds the
# guest kernel's build.
# Run as root, or with sudo available; on a machine that has them all it
# does nothing and needs no privileges.
set -eu

pkgs_build="gcc make libc6-dev binutils liburing-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libxxhash-dev libseccomp-dev libgnutls28-dev"
pkgs_test="libcmocka-dev qemu-system-x86 clang-format python3 curl iproute2 procps scdoc bash systemd tmux bsdutils python3-prometheus-client python3-yaml gnutls-bin"
pkgs_bench="qemu-system-x86 hyperfine busybox-static python3-matplotlib crun"
pkgs_l1="qemu-system-x86 linux-image-amd64 busybox-static kmod xz-utils zstd"
pkgs_lab="$pkgs_l1 qemu-system-x86 linux-image-amd64 linux-source-6.1 busybox-static cpio lz4 bc bison flex libelf-dev libssl-dev xz-utils kmod e2fsprogs"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_deb="debhelper dpkg-dev lintian scdoc"
# wisp image (docs/image.md): packing, the servers' clients for the lab test,
# and the bench-image peers (the servers themselves come as .debs).
pkgs_image="lz4 e2fsprogs busybox-static dpkg apt python3 redis-tools curl debootstrap runc python3-matplotlib"
# wisp-oci (docs/oci.md): the engines that call it, image tools, the CNI
# plugins for podman's network, runc as the reference runtime, e2fsprogs
# (mke2fs makes bind mounts into disks).
pkgs_oci="podman conmon buildah skopeo umoci containerd runc containernetworking-plugins iproute2 curl busybox-static uidmap e2fsprogs"

want=""
for g in "$@"; do
	eval "want=\"\$want \${pkgs_$g:?unknown group $g}\""
done
missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "wisp: installing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
