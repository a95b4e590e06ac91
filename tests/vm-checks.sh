#!/bin/bash
# The VM stage of `make test`: every test suite that boots a VM
# (tests/suites.sh all), then the Linux-guest lab (tests/lab/run.sh).
#
# Where: on this host's KVM when `wisp check` says it can run Wisp VMs;
# otherwise inside the KVM lab, in two L1s side by side (one per core: an
# L1 with two vCPUs stalled on a loaded 2-core host), each running some
# suites chrooted into this host's root. The test scripts are the same in
# both places: the lab is only a place to run them.
#
# Usage: tests/vm-checks.sh     (make test-vm builds what it needs first)
# Env: LAB=auto (default) | yes (always the lab) | no (always this host)
# Counts every PASS/FAIL/SKIPPED line; a check SKIPPED for want of
# /dev/kvm counts as failed, since one of the two places always has it.
cd "$(dirname "$0")/.." || exit 1
B=${BUILD:-build}
out=$B/vm-checks
rm -rf "$out"
mkdir -p "$out"
lane_a="kvm-unit run linux rng virtio control packaging observability oci metrics"
lane_b="snapshot security image daemon-linux"

# Every suite runs in some lane: a suite added to suites.sh but to no lane
# would otherwise never run in the lab.
for s in $(tests/suites.sh --list); do
	case " $lane_a $lane_b " in
	*" $s "*) ;;
	*) echo "FAIL: vm-checks: suite '$s' is in no lane of tests/vm-checks.sh"; exit 1 ;;
	esac
done

where=${LAB:-auto}
if [ "$where" = auto ]; then
	if $B/wisp check -q; then where=no; else where=yes; fi
fi
t0=$EPOCHREALTIME
secs() { local d=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000000)); echo "$((d / 60)) min $((d % 60)) s"; }
case "$where" in
no)
	echo "vm-checks: on this host's KVM ($($B/wisp check | head -1))"
	tests/suites.sh all 2>&1 | tee "$out/a.out"
	echo "vm-checks: suites done after $(secs)"
	tests/lab/run.sh 2>&1 | tee -a "$out/a.out"
	;;
yes)
	$B/wisp check | sed 's/^/vm-checks: /'
	echo "vm-checks: in the KVM lab: two L1s side by side, [$lane_a] then the Linux-guest lab in one, [$lane_b] in the other"
	# The second lane is printed when it ends; the first as it goes.
	tests/lab/in-lab.sh --name vm-b -- tests/suites.sh $lane_b >"$out/b.out" 2>&1 &
	b=$!
	{
		tests/lab/in-lab.sh --name vm-a -- tests/suites.sh $lane_a
		echo "vm-checks: lane a's suites done after $(secs)"
		tests/lab/run.sh
	} 2>&1 | tee "$out/a.out"
	wait $b
	echo "vm-checks: lane b ([$lane_b]), done after $(secs):"
	cat "$out/b.out"
	;;
*)
	echo "vm-checks: LAB must be auto, yes or no, not '$where'"
	exit 2
	;;
esac
cat "$out"/*.out >"$out/all"
pass=$(grep -cE '^(PASS: |\[       OK \] )' "$out/all")
fail=$(grep -c '^FAIL: ' "$out/all")
skip=$(grep -cE '^(SKIPPED: |\[  SKIPPED \] )' "$out/all")
# Summary lines and lab failures that are not a check's own line.
broken=$(grep -cE '^(suites: FAILED|in-lab: .*(exit [1-9]|without)|\[  FAILED  \])' "$out/all")
nokvm=$(grep -ciE '^SKIPPED: .*(no /dev/kvm|needs /dev/kvm)' "$out/all")
if [ "$nokvm" -gt 0 ]; then
	echo "FAIL: vm-checks: $nokvm checks SKIPPED for want of /dev/kvm, which is there:"
	grep -iE '^SKIPPED: .*(no /dev/kvm|needs /dev/kvm)' "$out/all" | head -5 | sed 's/^/  | /'
	fail=$((fail + nokvm))
fi
[ "$broken" -gt 0 ] && [ "$fail" -eq 0 ] && fail=$broken
# The failed checks again, last: CI shows the end of a long log.
if [ "$fail" -gt 0 ] || [ "$broken" -gt 0 ]; then
	echo "vm-checks: what failed:"
	grep -E '^(FAIL: |suites: FAILED|in-lab: .*(exit [1-9]|without)|\[  FAILED  \])' "$out/all" | cut -c1-400 | head -30 | sed 's/^/  | /'
fi
echo "vm-checks: $([ $where = yes ] && echo 'in the lab' || echo 'on this host'), $(secs)"
echo "vm: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$broken" -eq 0 ]
