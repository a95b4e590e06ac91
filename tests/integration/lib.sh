# Helpers for integration tests: source this, call the checks, end with
# `summary`. Every check prints one line: PASS, FAIL (with why) or SKIPPED.
# A VM test without a usable /dev/kvm is SKIPPED, never passed.

WISP=${WISP:-build/asan/wisp}
UK=${UK:-build/unikernels}
SUITE=${SUITE:-integration}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0 skip=0

ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1: $2"; fail=$((fail + 1)); }
skipped() { echo "SKIPPED: $1: $2"; skip=$((skip + 1)); }

# Can this process open /dev/kvm read-write?
kvm_ok() {
	dev=${WISP_KVM_DEVICE:-/dev/kvm}
	[ -c "$dev" ] && { exec 9<>"$dev"; } 2>/dev/null && exec 9>&-
}

# expect NAME CODE OUT_RE ERR_RE -- CMD...
# Runs CMD (a 30 s cap, or EXPECT_TIMEOUT seconds); passes if the exit code is CODE, stdout matches the
# extended regex OUT_RE and stderr matches ERR_RE (empty RE: anything; ERR_RE
# may list several regexes joined by ' && ', each matching some line), and no
# sanitizer complained.
expect() {
	name=$1 code=$2 out_re=$3 err_re=$4
	shift 5
	timeout -k 5 "${EXPECT_TIMEOUT:-30}" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	got=$?
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/err"; then
		bad "$name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$TMP/err")"
	elif [ "$got" != "$code" ]; then
		bad "$name" "exit $got, wanted $code; stderr: $(head -c 300 "$TMP/err")"
	elif [ -n "$out_re" ] && ! grep -qE -e "$out_re" "$TMP/out"; then
		bad "$name" "stdout lacks /$out_re/: $(head -c 300 "$TMP/out")"
	elif ! all_match "$err_re" "$TMP/err"; then
		bad "$name" "stderr lacks /$err_re/: $(head -c 300 "$TMP/err")"
	else
		ok "$name"
	fi
}

# all_match 'RE1 && RE2 ...' FILE: every regex matches some line of FILE.
all_match() {
	rest=$1
	while [ -n "$rest" ]; do
		re=${rest%% && *}
		case $rest in *" && "*) rest=${rest#* && } ;; *) rest= ;; esac
		grep -qE -e "$re" "$2" || return 1
	done
	return 0
}

# wait_for SECONDS CMD...: until CMD succeeds, polling every 50 ms; by the
# clock, not by a count of polls (a loaded lab makes each poll slow). A
# program (not a shell function) that hangs is killed after the whole wait
# (at least 30 s) and counts as a failed poll: a client stuck on a daemon
# that never answers must fail its check, never hang the suite.
wait_for() {
	local end=$((SECONDS + $1)) cap=$(($1 > 30 ? $1 : 30))
	shift
	while :; do
		if declare -F "$1" >/dev/null; then
			"$@" >/dev/null 2>&1 && return 0
		else
			timeout -k 2 "$cap" "$@" >/dev/null 2>&1 && return 0
		fi
		[ $SECONDS -lt $end ] || return 1
		sleep 0.05
	done
}

# vm_expect: like expect, but SKIPPED when there is no usable /dev/kvm.
vm_expect() {
	if ! kvm_ok; then
		skipped "$1" "no /dev/kvm"
		return
	fi
	expect "$@"
}

summary() {
	echo "$SUITE: $pass passed, $fail failed, $skip skipped"
	[ "$fail" -eq 0 ]
}
