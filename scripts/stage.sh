#!/bin/bash
# Time one stage of `make test`, keep its output, and sum up at the end.
# Usage: scripts/stage.sh NAME CMD [ARG...]   runs CMD, prints its time
#        scripts/stage.sh --summary           every stage's time, and the
#                                             checks of all stages counted
d=${BUILD:-build}/stages
if [ "$1" = --summary ]; then
	echo "== stage times (s)"
	cat "$d/times"
	awk '{ t += $2 } END { printf "   %-14s %8.1f\n", "total", t }' "$d/times"
	# Every check's own line: PASS/FAIL/SKIPPED, and cmocka's per-test lines.
	cat "$d"/*.out >"$d/all"
	pass=$(grep -cE '^(PASS: |\[       OK \] )' "$d/all")
	fail=$(grep -cE '^(FAIL: |\[  FAILED  \] [a-z_])' "$d/all")
	skip=$(grep -cE '^(SKIPPED: |\[  SKIPPED \] )' "$d/all")
	[ "$fail" -gt 0 ] && grep -E '^(FAIL: |\[  FAILED  \] [a-z_])' "$d/all" | cut -c1-400 | head -30 | sed 's/^/  | /'
	echo "test: $pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ]
	exit
fi
name=$1
shift
[ "$name" = format-check ] && rm -rf "$d" # the first stage starts a new run
mkdir -p "$d"
echo "== stage $name"
t0=$EPOCHREALTIME
"$@" 2>&1 | tee "$d/$name.out"
rc=${PIPESTATUS[0]}
t1=$EPOCHREALTIME
s=$(((${t1/./} - ${t0/./}) / 100000))
printf '   %-14s %6d.%d%s\n' "$name" $((s / 10)) $((s % 10)) "$([ $rc -ne 0 ] && echo "  FAILED (exit $rc)")" >>"$d/times"
echo "== stage $name: $((s / 10)).$((s % 10)) s$([ $rc -ne 0 ] && echo ", FAILED (exit $rc)")"
if [ $rc -ne 0 ]; then
	echo "== stage times so far (s)"
	cat "$d/times"
fi
exit $rc
