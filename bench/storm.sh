#!/bin/bash
# bench-storm: multi-VM isolation under exit storms (issue 17, Deliver 7).
# A well-behaved VM (loop.elf: a compute loop, no exits) is timed alone,
# then beside STORMERS VMs that each make VM exits as fast as they can
# (attack.elf storm: a hypercall in a loop). Its share is its pace beside
# them over its pace alone; the fair share of the host's CPUs among
# STORMERS + 1 busy VMs is min(1, nproc / (STORMERS + 1)).
# Usage: bench/storm.sh [STORMERS] [run|daemon]
#   run:    the stormers are `wisp run` VMs (default)
#   daemon: the stormers are daemon VMs (a private wispd), as in Why 12
# Prints "storm: alone A ns/iter, beside B ns/iter, share S% (fair F%),
# stormers K exits/s, crashed C of N". WISP, UK select the binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
WISP=${WISP:-build/wisp}
UK=${UK:-build/unikernels}
N=${1:-4}
MODE=${2:-run}
TMP=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ "$MODE" = daemon ] && [ -f "$TMP/run/wispd.lock" ]; then
		p=$(head -1 "$TMP/run/wispd.lock")
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
		for d in "$TMP"/run/vms/* "$TMP"/run/shells/*; do
			[ -d "$d" ] || continue
			for q in $(pgrep -f -- "--id $(basename "$d") "); do kill -9 "$q" 2>/dev/null; done
		done
	fi
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# pace ITERATIONS: ns per iteration of the well-behaved VM
pace() {
	$WISP run --timeout 120s $UK/loop.elf -- "$1" 2>/dev/null |
		sed -n 's/.*: \([0-9]*\)\.\([0-9]*\) ns\/iteration.*/\1\2/p'
}
# Calibrate: about 2 s alone.
p=$(pace 2000000)
[ -n "$p" ] || { echo "storm: loop.elf does not run here"; exit 1; }
iters=$((2000000000000 / (p > 0 ? p : 1)))
[ $iters -gt 200000000 ] && iters=200000000
alone=$(pace $iters)

if [ "$MODE" = daemon ]; then
	export WISP_RUNTIME_DIR=$TMP/run
	unset WISP_SOCKET
	$WISP daemon --pool 32M=0 >/dev/null 2>"$TMP/daemon.err" || { echo "storm: wispd: $(head -c 200 "$TMP/daemon.err")"; exit 1; }
	for i in $(seq "$N"); do
		$WISP create --name "storm$i" $UK/attack.elf -- storm >/dev/null 2>"$TMP/create.err" ||
			{ echo "storm: create: $(head -c 200 "$TMP/create.err")"; exit 1; }
	done
else
	for i in $(seq "$N"); do
		$WISP run --timeout 300s $UK/attack.elf -- storm >"$TMP/storm$i.out" 2>&1 &
		pids+=($!)
	done
fi
sleep 2
beside=$(pace $iters)
rate=0 crashed=0
for i in $(seq "$N"); do
	if [ "$MODE" = daemon ]; then
		$WISP console "storm$i" >"$TMP/storm$i.out" 2>/dev/null
		state=$($WISP list --json 2>/dev/null | python3 -c "import json,sys; print([v['state'] for v in json.load(sys.stdin) if v['name']=='storm$i'][0])" 2>/dev/null)
		[ "$state" = running ] || { crashed=$((crashed + 1)); echo "storm$i: $state" >&2; }
	else
		kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { crashed=$((crashed + 1)); echo "storm$i: ended: $(tail -c 200 "$TMP/storm$i.out")" >&2; }
	fi
	r=$(sed -n 's/^storm: \([0-9]*\) exits\/s$/\1/p' "$TMP/storm$i.out" | tail -1)
	rate=$((rate + ${r:-0}))
done
cpus=$(nproc)
fair=$((cpus * 100 / (N + 1)))
[ $fair -gt 100 ] && fair=100
if [ -n "$alone" ] && [ -n "$beside" ] && [ "$beside" -gt 0 ]; then
	share=$((alone * 100 / beside))
else
	share=?
fi
# ns/iteration are printed with 3 decimals: the values above are in ps.
echo "storm: alone $((alone / 1000)).$(printf %03d $((alone % 1000))) ns/iter, beside $((${beside:-0} / 1000)).$(printf %03d $((${beside:-0} % 1000))) ns/iter, share $share% (fair $fair%, $cpus CPUs, $iters iterations), stormers $rate exits/s, crashed $crashed of $N ($MODE)"
