#!/bin/bash
# Run VM test suites, by name, on the KVM of wherever this runs: this host,
# or L1 in the lab (tests/vm-checks.sh decides which; so can you, with
# tests/lab/in-lab.sh -- tests/suites.sh NAME). The binaries must be built
# (make test-build). Each suite prints PASS/FAIL/SKIPPED lines and a summary.
#
# Usage: tests/suites.sh SUITE...   (all: every suite below, in this order;
#        --list: their names)
#   kvm-unit  the unit tests that attach devices to a real VM (cmocka)
#   run       wisp run end to end          linux  bad kernels, Linux options
#   rng       the course's RNG device      virtio virtio devices, unikernels
#   control   wispd, wisp-vmm, the verbs   snapshot save/restore/clone/migrate
#   image     wisp image: redis, nginx, memcached in VMs, driven by their clients
#   security  the hostile-user suite (docs/security.md)
#   oci       wisp-oci under podman and containerd (docs/oci.md); not yet in
#             all: it joins once tests/vm-checks.sh gives it a lane
#   daemon-linux  a wispd Linux VM (2 vCPUs, disk, TAP, vsock) serving HTTP
#             to curl; needs a KVM that runs Linux (the lab, host-root mode)
#   packaging make install and the .deb: the installed wisp runs VMs
#   observability  JSON logs, wisp top under tmux, progress lines
#   metrics   GET /metrics (strict parsers, values against wisp stats) and
#             docs/openapi.yaml against the running wispd, both ways
# Exits non-zero if any suite failed.
cd "$(dirname "$0")/.." || exit 1
B=${BUILD:-build}
all="kvm-unit run linux rng virtio control snapshot security image oci daemon-linux packaging observability metrics"
[ "$*" = --list ] && { echo "$all"; exit 0; }
[ "$*" = all ] && set -- $all
[ $# -gt 0 ] || { echo "usage: tests/suites.sh SUITE... (or all: $all)" >&2; exit 2; }

export WISP=$B/asan/wisp UK=$B/unikernels
suite() {
	case "$1" in
	kvm-unit) $B/asan/tests/test_virtio_attach ;;
	run) tests/integration/test_run.sh ;;
	linux) tests/integration/test_linux.sh ;;
	rng) RNG_APP=$B/asan/linux/rng tests/integration/test_rng.sh ;;
	virtio) UDS=$B/tests/uds tests/integration/test_virtio.sh ;;
	control) tests/integration/test_control.sh ;;
	snapshot) SNAPTOOL=$B/tests/snaptool UDS=$B/tests/uds tests/integration/test_snapshot.sh ;;
	image) tests/integration/test_image.sh vm ;;
	security) SNAPTOOL=$B/tests/snaptool tests/integration/test_security.sh ;;
	oci) OCI=$B/asan/wisp-oci tests/integration/test_oci.sh ;;
	daemon-linux) tests/integration/test_daemon_linux.sh ;;
	packaging) tests/integration/test_packaging.sh vm ;;
	observability) tests/integration/test_observability.sh ;;
	metrics) tests/integration/test_metrics.sh ;;
	*) echo "FAIL: suites: unknown suite '$1' (known: $all)"; return 1 ;;
	esac
}

failed=""
for s in "$@"; do
	t0=$EPOCHREALTIME
	echo "== suite $s$([ -n "${LAB_L1:-}" ] && echo ' (in the lab: L1 under QEMU TCG, kvm_amd)')"
	suite "$s" </dev/null || failed="$failed $s"
	t1=$EPOCHREALTIME
	ms=$(((${t1/./} - ${t0/./}) / 1000))
	echo "== suite $s: $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
done
[ -z "$failed" ] || { echo "suites: FAILED:$failed"; exit 1; }
