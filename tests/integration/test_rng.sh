#!/bin/bash
# The course's RNG device end to end from a unikernel: PCI enumeration, the
# seeded sequence against an independent implementation of the documented
# algorithm (tests/tools/rng_ref.py), unseeded runs, every odd access, and
# the CLI's --rng-device errors. Usage: test_rng.sh (from the repo root).
cd "$(dirname "$0")/../.." || exit 1
SUITE=rng
. tests/integration/lib.sh
REF="python3 tests/tools/rng_ref.py"

# same_output NAME EXPECTED_FILE -- CMD...: passes if CMD exits 0, prints
# exactly the expected file on stdout, and no sanitizer complained.
same_output() {
	name=$1 want=$2
	shift 3
	timeout -k 5 30 "$@" >"$TMP/got" 2>"$TMP/err" </dev/null
	code=$?
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/err"; then
		bad "$name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$TMP/err")"
	elif [ $code != 0 ]; then
		bad "$name" "exit $code; stderr: $(head -c 300 "$TMP/err")"
	elif ! cmp -s "$TMP/got" "$want"; then
		bad "$name" "output differs from the documented algorithm: $(diff "$want" "$TMP/got" | head -5 | tr '\n' ' ')"
	else
		ok "$name"
	fi
}

# same: the same for a command that boots a VM (SKIPPED without /dev/kvm).
same() {
	if kvm_ok; then same_output "$@"; else skipped "$1" "no /dev/kvm"; fi
}

if ! command -v python3 >/dev/null; then
	echo "FAIL: python3 is needed for the reference generator (scripts/deps.sh test)"
	exit 1
fi

# --- PCI: the host bridge Linux looks for, and the device behind it ----------
vm_expect pci-mech1-only 0 '^mechanism #1: yes, mechanism #2: no$' '' -- $WISP run --rng-device $UK/lspci.elf
vm_expect pci-host-bridge 0 '^00:00\.0 1234:5700 class 060000$' '' -- $WISP run --rng-device $UK/lspci.elf
vm_expect pci-rng-function 0 '^00:01\.0 1234:5701 class 108000$' '' -- $WISP run --rng-device $UK/lspci.elf
vm_expect pci-rng-bar0 0 '^  bar0 mem 0xc0000000 size 0x1000$' '' -- $WISP run --rng-device $UK/lspci.elf
vm_expect pci-absent-without-device 1 '^mechanism #1: no' '' -- $WISP run $UK/lspci.elf
vm_expect rng-absent-clear-error 1 'no PCI bus \(start wisp with --rng-device\)' '' -- $WISP run $UK/rng.elf -- get 1
# The PCI window leaves the rest of the MMIO hole unclaimed.
vm_expect probe-with-rng-device 0 '^probe: ok$' '' -- $WISP run --rng-device $UK/probe.elf

# --- the generator: guest seeding, CLI seeding, reseeding ----------------------
$REF 42 100 >"$TMP/ref42"
same seed-42-matches-reference "$TMP/ref42" -- $WISP run --rng-device $UK/rng.elf -- seed 42 get 100
if [ "$(head -1 "$TMP/ref42")" = 2707161783 ]; then ok seed-42-is-pcg32-reference-vector
else bad seed-42-is-pcg32-reference-vector "first number $(head -1 "$TMP/ref42")"; fi
for s in 0 1 4294967295; do
	$REF $s 20 >"$TMP/ref$s"
	same "seed-$s-matches-reference" "$TMP/ref$s" -- $WISP run --rng-device $UK/rng.elf -- seed $s get 20
done
$REF 7 10 >"$TMP/ref7"
same cli-seed-matches-reference "$TMP/ref7" -- $WISP run --rng-device=7 $UK/rng.elf -- get 10
{ $REF 5 3; $REF 5 3; } >"$TMP/ref5twice"
same reseed-restarts-sequence "$TMP/ref5twice" -- $WISP run --rng-device $UK/rng.elf -- seed 5 get 3 seed 5 get 3
# A guest's seed overrides the one given on the command line.
same guest-seed-overrides-cli "$TMP/ref42" -- $WISP run --rng-device=7 $UK/rng.elf -- seed 42 get 100

# Unseeded: host entropy, so two runs differ (and differ from seed 0).
if kvm_ok; then
	a=$($WISP run --rng-device $UK/rng.elf -- get 8 | tr '\n' ' ')
	b=$($WISP run --rng-device $UK/rng.elf -- get 8 | tr '\n' ' ')
	if [ -n "$a" ] && [ "$(echo $a | wc -w)" = 8 ] && [ "$a" != "$b" ]; then ok unseeded-runs-differ
	else bad unseeded-runs-differ "run 1 '$a', run 2 '$b'"; fi
else skipped unseeded-runs-differ "no /dev/kvm"; fi

# --- odd accesses: each gets its documented answer; the guest checks them and
# the VMM's counters agree (10 aligned non-operations + 16 odd widths/offsets,
# each read and written).
vm_expect odd-accesses-as-documented 0 '^rng-odd: ok$' '' -- $WISP run --rng-device $UK/rng-odd.elf
vm_expect odd-accesses-counted 0 '^rng-odd: ok$' 'rng-device: reads 8 \(32 bytes\) seeds 2 ignored 42$' -- $WISP run --stats --rng-device $UK/rng-odd.elf

# --- one exit per register read, which is what the benchmark reports ----------
vm_expect bench-runs 0 '^bench: 4096 bytes in [0-9]+ us: [0-9]+ bytes/s' 'exits: io [0-9]+ mmio 1024 ' -- $WISP run --stats --rng-device $UK/rng.elf -- bench 4096

# --- bad input ------------------------------------------------------------------
expect err-rng-seed-garbage 125 '' "--rng-device='abc': the seed must be a number from 0 to 4294967295" -- $WISP run --rng-device=abc $UK/rng.elf
expect err-rng-seed-too-big 125 '' "--rng-device='4294967296': the seed must be" -- $WISP run --rng-device=4294967296 $UK/rng.elf
expect err-rng-seed-negative 125 '' "--rng-device='-1': the seed must be" -- $WISP run --rng-device=-1 $UK/rng.elf
expect err-rng-seed-empty 125 '' "--rng-device='': the seed must be" -- $WISP run --rng-device= $UK/rng.elf
vm_expect err-guest-bad-seed 2 "rng: seed 'x': must be a number" '' -- $WISP run --rng-device $UK/rng.elf -- seed x
vm_expect err-guest-bad-command 2 "rng: unknown command 'frob'" '' -- $WISP run --rng-device $UK/rng.elf -- frob

# --- the Linux rng app on the host, against fake devices ------------------------
# (the real driver is tested in the Linux lab; here: parsing, reading whole
# words across short reads, and the errors).
RNG_APP=${RNG_APP:-build/asan/linux/rng}
if [ -x "$RNG_APP" ]; then
	python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack("<I", int(l)) for l in open(sys.argv[1])))' "$TMP/ref42" >"$TMP/words42"
	head -5 "$TMP/ref42" >"$TMP/ref42.5"
	same_output app-get-prints-words "$TMP/ref42.5" -- env WISP_RNG_DEV="$TMP/words42" $RNG_APP get 5
	head -c 7 "$TMP/words42" >"$TMP/seven"
	expect app-partial-word 1 '' 'returned 7 bytes, not whole 32-bit words' -- env WISP_RNG_DEV="$TMP/seven" $RNG_APP get 2
	expect app-short-device 1 '' 'unexpected end of data' -- env WISP_RNG_DEV="$TMP/words42" $RNG_APP get 101
	expect app-device-absent 1 '' '/nonexistent/wisp-rng: No such file or directory \(no RNG device: start the VM with wisp run --rng-device and load the wisp_rng module\)' -- env WISP_RNG_DEV=/nonexistent/wisp-rng $RNG_APP get 1
	expect app-default-path 1 '' '^rng: /dev/wisp-rng: ' -- $RNG_APP get 1
	expect app-seed-not-a-device 1 '' 'rng: seeding .*: ' -- env WISP_RNG_DEV="$TMP/words42" $RNG_APP seed 42
	expect app-bad-seed 2 '' "rng: seed '4294967296': S must be a number from 0 to 4294967295" -- $RNG_APP seed 4294967296
	expect app-negative-count 2 '' "rng: get '-1': N must be" -- $RNG_APP get -1
	expect app-bad-bench 2 '' "rng: bench '0': SECONDS must be" -- $RNG_APP bench 0
	expect app-usage 2 '' '^usage: rng get N \| rng seed S \| rng bench' -- $RNG_APP frob
	expect app-bench-rate 0 '^bench: [0-9]+ numbers in [0-9.]+ s: [0-9]+ numbers/s, [0-9]+ bytes/s$' '' -- env WISP_RNG_DEV=/dev/zero $RNG_APP bench 1
else
	bad linux-rng-app "$RNG_APP not built (make $RNG_APP)"
fi

summary
