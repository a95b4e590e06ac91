#!/bin/sh
# Print where a benchmark's figures are measured, first thing in its output:
# in the KVM lab (L1 under QEMU TCG, where only ratios mean anything) or on
# this host's KVM (named by `wisp check`). Usage: bench/where.sh NAME
if [ -n "${LAB_L1:-}" ]; then
	echo "$1: measured in the KVM lab (L1: QEMU TCG, emulated AMD SVM + NPT, kvm_amd): TCG figures, only the ratios against peers run beside them mean anything"
else
	echo "$1: measured on this host's KVM ($(${BUILD:-build}/wisp check 2>&1 | head -1 | sed 's/^wisp check: //'))"
fi
