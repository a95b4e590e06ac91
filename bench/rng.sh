#!/bin/bash
# bench-rng: random bytes per second and VM exits per KiB through the
# emulated RNG device, from a unikernel (CPL3) on this machine's /dev/kvm.
# Every 4 bytes cost one MMIO read of the RNG register, i.e. one exit to
# user space. Usage: bench/rng.sh [BYTES_PER_ROUND [ROUNDS]]
cd "$(dirname "$0")/.." || exit 1
bench/where.sh bench-rng
WISP=${WISP:-build/wisp}
UK=${UK:-build/unikernels}
BYTES=${1:-262144}
ROUNDS=${2:-5}
dev=${WISP_KVM_DEVICE:-/dev/kvm}
if ! { [ -c "$dev" ] && { exec 9<>"$dev"; } 2>/dev/null; }; then
	echo "SKIPPED: bench-rng: no usable $dev"
	exit 0
fi
exec 9>&-
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rates="" exits=""
for r in $(seq "$ROUNDS"); do
	if ! $WISP run --stats --rng-device "$UK/rng.elf" -- bench "$BYTES" >"$out" 2>&1; then
		echo "bench-rng: round $r failed:"; cat "$out"; exit 1
	fi
	rate=$(sed -n 's/^bench: .* \([0-9]*\) bytes\/s.*/\1/p' "$out")
	got=$(sed -n 's/^bench: \([0-9]*\) bytes.*/\1/p' "$out")
	# io (PCI enumeration, clock, console), mmio (device reads), hypercalls.
	read -r io mmio <<<"$(sed -n 's/.*exits: io \([0-9]*\) mmio \([0-9]*\).*/\1 \2/p' "$out")"
	reads=$(sed -n 's/.*rng-device: reads \([0-9]*\).*/\1/p' "$out")
	[ -n "$rate" ] && [ -n "$mmio" ] && [ "$got" = "$BYTES" ] || { echo "bench-rng: cannot parse:"; cat "$out"; exit 1; }
	rates="$rates $rate"
	exits="$exits $mmio:$io:$reads"
done
python3 - "$BYTES" $rates -- $exits <<'PY'
import statistics, sys
args = sys.argv[1:]
nbytes = int(args[0])
sep = args.index("--")
rates = [int(x) for x in args[1:sep]]
ex = [tuple(int(v) for v in e.split(":")) for e in args[sep + 1:]]
kib = nbytes / 1024
mmio = statistics.median(e[0] for e in ex)
allx = statistics.median(e[0] + e[1] for e in ex)
reads = statistics.median(e[2] for e in ex)
med = statistics.median(rates)
print("bench-rng: %d rounds of %d bytes through the emulated PCI RNG device (unikernel at CPL3)" % (len(rates), nbytes))
print("  random bytes/s:  median %d (min %d, max %d)" % (med, min(rates), max(rates)))
print("  numbers/s:       median %d" % (med / 4))
print("  exits per KiB:   %.1f MMIO exits (device register reads: %d per round), %.1f counting every exit of the run" % (mmio / kib, reads, allx / kib))
print("  time per number: %.1f us (one MMIO exit to user space and back)" % (4e6 / med))
PY
