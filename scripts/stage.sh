#!/bin/bash
# Time one stage of `make test` and keep the times for the summary.
# Usage: scripts/stage.sh NAME CMD [ARG...]   runs CMD, prints its time
#        scripts/stage.sh --summary           prints every stage's time
f=${BUILD:-build}/stages.txt
if [ "$1" = --summary ]; then
	echo "== stage times (s)"
	cat "$f"
	awk '{ t += $2 } END { printf "   %-14s %8.1f\n", "total", t }' "$f"
	rm -f "$f"
	exit 0
fi
name=$1
shift
mkdir -p "$(dirname "$f")"
[ "$name" = format-check ] && rm -f "$f" # the first stage starts a new run
echo "== stage $name"
t0=$EPOCHREALTIME
"$@"
rc=$?
t1=$EPOCHREALTIME
s=$(((${t1/./} - ${t0/./}) / 100000))
printf '   %-14s %6d.%d%s\n' "$name" $((s / 10)) $((s % 10)) "$([ $rc -ne 0 ] && echo "  FAILED (exit $rc)")" >>"$f"
echo "== stage $name: $((s / 10)).$((s % 10)) s$([ $rc -ne 0 ] && echo ", FAILED (exit $rc)")"
if [ $rc -ne 0 ]; then
	echo "== stage times so far (s)"
	cat "$f"
fi
exit $rc
