#!/bin/bash
# The hostile-user suite (issue 17, docs/security.md): a guest, a stalled
# console consumer and a local user each try to hurt the host or take its
# control away; every defence Wisp has is checked here from outside.
# Usage: test_security.sh (from the repo root; WISP, UK select the binaries).
cd "$(dirname "$0")/../.." || exit 1
SUITE=security
. tests/integration/lib.sh

if ! kvm_ok; then
	echo "SKIPPED: no /dev/kvm: every VM test below is skipped"
fi

# --- the host stays in control (Why 9): a consumer that never reads ---------
# stalled_stop NAME HOW CMD...: runs CMD (a guest that floods its console)
# with stdout on a FIFO whose only reader never reads, stops it by HOW
# (timeout: CMD has --timeout 1s; TERM, INT: that signal after 1 s) and
# passes if it ends within 10 s with the expected exit code.
stalled_stop() {
	name=$1 how=$2
	shift 2
	if ! kvm_ok; then
		skipped "$name" "no /dev/kvm"
		return
	fi
	rm -f "$TMP/fifo" && mkfifo "$TMP/fifo"
	sleep 60 <"$TMP/fifo" &
	reader=$!
	t0=$EPOCHREALTIME
	"$@" >"$TMP/fifo" 2>"$TMP/err" </dev/null &
	vmm=$!
	want=124
	if [ "$how" != timeout ]; then
		sleep 1
		kill -"$how" $vmm
		want=$((128 + $(kill -l "$how")))
	fi
	for _ in $(seq 100); do
		kill -0 $vmm 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $vmm 2>/dev/null; then
		kill -KILL $vmm
		wait $vmm 2>/dev/null
		bad "$name" "still running 10 s later (stdout on a FIFO nobody reads)"
	else
		wait $vmm
		code=$?
		ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
		if grep -qE 'Sanitizer|runtime error' "$TMP/err"; then
			bad "$name" "sanitizer: $(grep -m1 -E 'Sanitizer|runtime error' "$TMP/err")"
		elif [ "$code" != "$want" ]; then
			bad "$name" "exit $code, wanted $want: $(head -c 300 "$TMP/err")"
		else
			ok "$name (${ms} ms)"
		fi
	fi
	kill $reader 2>/dev/null
	wait $reader 2>/dev/null
}
stalled_stop stalled-console-timeout timeout $WISP run --timeout 1s $UK/attack.elf -- flood
stalled_stop stalled-console-sigterm TERM $WISP run $UK/attack.elf -- flood
stalled_stop stalled-console-sigint INT $WISP run $UK/attack.elf -- flood
stalled_stop stalled-virtio-console-timeout timeout $WISP run --timeout 1s --console virtio $UK/hvc.elf -- flood
stalled_stop stalled-virtio-console-sigterm TERM $WISP run --console virtio $UK/hvc.elf -- flood

# --- deadlines saturate (Why 10) -------------------------------------------------
vm_expect poll-near-2^64-sleeps 124 '^pollwrap: sleeping$' 'timeout of 2000 ms' -- $WISP run --timeout 2s $UK/attack.elf -- pollwrap

# --- CPL3 is a boundary inside a unikernel (Why 11) -----------------------------
vm_expect idt-is-supervisor-only 126 '' '#PF page fault \(vector 14\).*address 0x2030' -- $WISP run --timeout 10s $UK/attack.elf -- idt
vm_expect stack-guard-page 126 '^stack: guard at 0x' '#PF page fault \(vector 14\).*error code 0x[67]' -- sh -c "$WISP run --timeout 10s $UK/attack.elf -- stack 2>&1 | tee $TMP/stack.out; g=\$(sed -n 's/^stack: guard at 0x\(.*\)000$/\1/p' $TMP/stack.out); grep -q \"address 0x\$g[0-9a-f][0-9a-f][0-9a-f],\" $TMP/stack.out >&2 && grep '#PF' $TMP/stack.out >&2; exit 126"
vm_expect halt-at-cpl0-reported 126 '' 'guest halted \(HLT\) with nothing to wake it' -- $WISP run --timeout 10s $UK/halt-cpl0.elf

# --- small divergences (Why 13) -------------------------------------------------
# After a triple fault KVM on AMD has reset the vCPU: the registers printed
# must be the guest's, or none at all, never the reset state.
vm_expect triple-fault-regs-not-reset 126 '' 'triple fault \(KVM_EXIT_SHUTDOWN\)' -- sh -c "$WISP run --timeout 10s $UK/attack-cpl0.elf -- triple 2>&1 >/dev/null | tee /dev/stderr | grep -q 'rip 000000000000fff0' && exit 1; exit 126"

summary
