#!/bin/sh
# bench-run: see bench/bench.mk. RUNS and RSS_RUNS override the run counts.
set -eu
cd "$(dirname "$0")/.."
bench/where.sh bench-run
B=build
RUNS=${RUNS:-$([ -n "${LAB_L1:-}" ] && echo 40 || echo 200)} # TCG is slow: fewer in the lab
QEMU="qemu-system-x86_64 -M microvm -accel kvm -nodefaults -no-user-config -nographic -serial stdio -device isa-debug-exit"
[ -c /dev/kvm ] || { echo "SKIPPED: no /dev/kvm: bench-run needs KVM"; exit 0; }
echo "== launch -> exit, noop unikernel, $RUNS interleaved runs each (nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg)) =="
$B/bench/launch -n "$RUNS" -r "${RSS_RUNS:-10}" -c $B/bench/run.csv \
	"wisp=$B/wisp run $B/unikernels/noop.elf" \
	"qemu:1=$QEMU -kernel $B/unikernels/noop.elf" \
	"fork+exec=$B/bench/true"
echo "CSV: $B/bench/run.csv"

echo
echo "== the same application at CPL3 and at CPL0 (loop.elf vs loop-cpl0.elf; 5 runs, median) =="
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
per_iter() { # IMAGE ITERATIONS -> median ns/iteration
	for _ in 1 2 3 4 5; do
		$B/wisp run "$1" -- "$2" | sed -n 's/.*: \([0-9.]*\) ns\/iteration.*/\1/p'
	done | median
}
cpl3=$(per_iter $B/unikernels/loop.elf 10000000)
cpl0=$(per_iter $B/unikernels/loop-cpl0.elf 20000)
echo "CPL3: $cpl3 ns/iteration (10M iterations)"
echo "CPL0: $cpl0 ns/iteration (20k iterations)"
echo "CPL0 / CPL3 = $(echo "$cpl0 $cpl3" | awk '{printf "%.0f", $1 / $2}')x"
