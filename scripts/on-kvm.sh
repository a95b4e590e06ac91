#!/bin/bash
# Run a command on a KVM that can run Wisp VMs: this host's, when
# `wisp check` says so, or else L1's in the KVM lab (tests/lab/in-lab.sh),
# chrooted into this host's root, in this directory, with this environment.
# The demo, the single test suites and the benchmarks start through here.
#
# Usage: scripts/on-kvm.sh [--name NAME] -- CMD [ARG...]
# Env: LAB=auto (default) | yes (always the lab) | no (always this host)
set -uo pipefail
name=job
[ "${1:-}" = --name ] && { name=$2; shift 2; }
[ "${1:-}" = -- ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
wisp=$root/${BUILD:-build}/wisp
where=${LAB:-auto}
if [ "$where" = auto ]; then
	[ -x "$wisp" ] || { echo "on-kvm: $wisp missing (make all)" >&2; exit 125; }
	if "$wisp" check -q; then where=no; else where=yes; fi
	if [ $where = yes ]; then
		echo "wisp: this host cannot run Wisp VMs ($("$wisp" check | head -1 | sed 's/^wisp check: //')); running in the KVM lab" >&2
	fi
fi
case "$where" in
no) exec "$@" ;;
yes) exec "$root/tests/lab/in-lab.sh" --name "$name" -- "$@" ;;
*) echo "on-kvm: LAB must be auto, yes or no, not '$where'" >&2; exit 125 ;;
esac
