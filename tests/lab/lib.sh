# Helpers for lab tests. Sourced by busybox sh inside the L1 guest, where
# /lab is the host's build/lab/share over 9p and /dev/kvm is L1's KVM.
# Each check prints one line: PASS, FAIL (with why) or SKIPPED; a check that
# booted an L2 guest says "[L2 boot ...]" so the host can count boots.
W=/lab/wisp
BZ=/lab/bzImage
VMLINUX=/lab/vmlinux
RD=/lab/initrd
CMDLINE="console=ttyS0 reboot=t panic=-1 quiet"
MARK="wisp-init: ready"
OUT=/tmp/l2.out

ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $1: $2"; }
skipped() { echo "SKIPPED: $1: $2"; }

# Last lines of the L2 output, on one line, for failure messages.
tail_out() { tail -n "${2:-6}" "$1" | tr '\n' '|' | cut -c1-600; }

# l2 NAME WANT_RC OUT_RE [-i STDIN_FILE] -- CMD...
# Boots one L2 guest with CMD (under bootclock, 60 s cap) and passes if the
# exit code is WANT_RC and the output (stdout+stderr) matches the extended
# regex OUT_RE. Leaves the bootclock numbers in L2_MARKER_MS, L2_EXIT_MS,
# L2_RSS_KB and the output in $OUT.
l2() {
	_name=$1 _want=$2 _re=$3
	shift 3
	_in=/dev/null
	if [ "$1" = -i ]; then _in=$2; shift 2; fi
	shift # --
	_clock=$(/lab/bootclock -t "${L2_TIMEOUT:-60}" "$MARK" "$OUT" -- "$@" <"$_in")
	_rc=$?
	tr -d '\r' <"$OUT" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT" # the guest tty sends CRLF
	L2_MARKER_MS=$(echo "$_clock" | sed -n 's/.*marker_ms=\([-0-9]*\).*/\1/p')
	L2_EXIT_MS=$(echo "$_clock" | sed -n 's/.*exit_ms=\([0-9]*\).*/\1/p')
	L2_RSS_KB=$(echo "$_clock" | sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p')
	if [ "$_rc" != "$_want" ]; then
		bad "$_name" "exit $_rc, wanted $_want; output: $(tail_out "$OUT")"
	elif [ -n "$_re" ] && ! grep -qE -e "$_re" "$OUT"; then
		bad "$_name" "output lacks /$_re/: $(tail_out "$OUT")"
	else
		ok "$_name [L2 boot: exit after $(ms_to_s "$L2_EXIT_MS") s]"
		return 0
	fi
	return 1
}

# expect NAME WANT_RC ERR_RE -- CMD...: a command that must fail before any
# guest runs (bad input).
expect() {
	_name=$1 _want=$2 _re=$3
	shift 4
	"$@" >"$OUT" 2>&1 </dev/null
	_rc=$?
	if [ "$_rc" != "$_want" ]; then
		bad "$_name" "exit $_rc, wanted $_want: $(tail_out "$OUT")"
	elif ! grep -qE -e "$_re" "$OUT"; then
		bad "$_name" "output lacks /$_re/: $(tail_out "$OUT")"
	else
		ok "$_name"
	fi
}

ms_to_s() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print -1; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# QEMU, from the bundle in the share (binary + its libraries + firmware).
QEMU=/lab/qemu/qemu

# type_in FIFO LINE...: like a user at the console, wait for the guest
# shell's prompt to appear in $OUT, then type each line. Pass the FIFO to
# l2 with -i. (Input sent before the shell is up could be flushed when it
# sets up its terminal; a person types after the prompt too.)
type_in() {
	_fifo=$1
	shift
	rm -f "$_fifo" "$OUT"
	mkfifo "$_fifo"
	(
		exec 3>"$_fifo"
		_n=0
		while ! grep -q 'wisp:/# ' "$OUT" 2>/dev/null && [ $_n -lt 300 ]; do
			sleep 0.2
			_n=$((_n + 1))
		done
		for _l in "$@"; do
			printf '%s\n' "$_l" >&3
			sleep 0.3
		done
	) &
}

# when_output RE CMD...: in the background, wait (up to 60 s) for the next
# L2 guest's output to match RE, then run CMD; for the L1 side of a
# conversation with a running guest. Call it right before l2.
when_output() {
	_wre=$1
	shift
	rm -f "$OUT"
	(
		_n=0
		while ! grep -qE -e "$_wre" "$OUT" 2>/dev/null && [ $_n -lt 300 ]; do
			sleep 0.2
			_n=$((_n + 1))
		done
		exec "$@"
	) &
}

# lab_tap: the persistent TAP wt0 with 10.0.2.1/24 on L1's side (for
# --net tap=wt0 and QEMU's -netdev tap,ifname=wt0); guests use 10.0.2.15.
lab_tap() {
	[ -d /sys/class/net/wt0 ] && return 0
	/lab/tapctl add wt0 && ip addr add 10.0.2.1/24 dev wt0 && ip link set wt0 up
}
