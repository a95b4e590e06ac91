# Progress of a kernel build, for guest/kernel/build.sh and
# src/image/kernel/build.sh (sourced). Usage:
#   make ... >LOG 2>&1 & build_progress NAME LOG $! STEPS_FILE
# waits for the make and returns its status. make's quiet output ("  CC
# foo.o") goes to LOG; each such line is a step. On a terminal one line is
# redrawn every second: steps done, time, and (once a build has recorded in
# STEPS_FILE how many steps it took) percent and ETA. Not on a terminal, or
# with WISP_QUIET=1, nothing: the caller logs its one "built in N s" line.
build_progress() {
	local name=$1 log=$2 pid=$3 steps_file=$4 t0=$SECONDS n el total=0 status
	[ -r "$steps_file" ] && total=$(cat "$steps_file" 2>/dev/null) && [[ "$total" =~ ^[0-9]+$ ]] || total=0
	if [ -t 2 ] && [ "${WISP_QUIET:-0}" != 1 ]; then
		while kill -0 "$pid" 2>/dev/null; do
			n=$(grep -c '^  [A-Z]' "$log" 2>/dev/null) || n=0
			el=$((SECONDS - t0))
			if [ "$total" -gt 0 ] && [ "$n" -gt 0 ]; then
				local pct=$((n * 100 / total)) eta=$((el * (total - n) / n))
				[ $pct -gt 99 ] && pct=99
				[ $eta -lt 0 ] && eta=0
				printf '\r%s: %d/%d steps (%d%%), %d s, ETA %d:%02d\033[K' "$name" "$n" "$total" "$pct" "$el" $((eta / 60)) $((eta % 60)) >&2
			else
				printf '\r%s: %d steps, %d s\033[K' "$name" "$n" "$el" >&2
			fi
			sleep 1
		done
		printf '\r\033[K' >&2
	fi
	wait "$pid"
	status=$?
	if [ $status = 0 ]; then
		n=$(grep -c '^  [A-Z]' "$log" 2>/dev/null) || n=0
		[ "$n" -gt 0 ] && echo "$n" >"$steps_file"
	fi
	return $status
}
