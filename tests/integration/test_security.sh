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

# --- a snapshot chooses no host resource (Why 2) --------------------------------
# The snapshot's recorded disk path is rewritten to name another host file
# (same length, both hashes fixed: every integrity check passes). Restoring
# it must not open that file: a restore opens only the host sides it is
# given, and the victim keeps its bytes.
SNAPTOOL=${SNAPTOOL:-build/tests/snaptool}
if kvm_ok; then
	truncate -s 64K "$TMP/disk.img" "$TMP/gift.img"
	printf 'precious' >"$TMP/vict.img" && truncate -s 64K "$TMP/vict.img"
	sum0=$(sha256sum <"$TMP/vict.img")
	$WISP run --name s2 --disk "$TMP/disk.img" $UK/counter.elf -- 30 >"$TMP/s2.out" 2>&1 &
	S2=$!
	wait_for 10 grep -q '^tick 2$' "$TMP/s2.out"
	expect crafted-snapshot-saved 0 '^saved s2' '' -- $WISP save s2 "$TMP/s2.snap"
	kill -9 $S2 2>/dev/null
	wait $S2 2>/dev/null
	expect crafted-snapshot-made 0 'replaced' '' -- $SNAPTOOL sub "$TMP/s2.snap" "$TMP/disk.img" "$TMP/vict.img"
	expect crafted-snapshot-names-victim 0 "\"path\":\"$TMP/vict.img\"" '' -- $SNAPTOOL config "$TMP/s2.snap"
	expect crafted-snapshot-opens-nothing 125 '' 'the snapshot has a virtio-blk: give its host side again' -- $WISP run --restore "$TMP/s2.snap"
	expect crafted-snapshot-opens-what-it-is-given 124 '^tick ' '' -- $WISP run --timeout 2s --restore "$TMP/s2.snap" --disk "$TMP/gift.img"
	if [ "$(sha256sum <"$TMP/vict.img")" = "$sum0" ]; then
		ok crafted-snapshot-victim-intact
	else
		bad crafted-snapshot-victim-intact "the victim file changed"
	fi
else
	skipped crafted-snapshot "no /dev/kvm"
fi

# --- rate limits (Why 8, Deliver 5) ----------------------------------------------
# A disk limited by bandwidth or by operations gets that rate over seconds,
# measured by the guest; the limiter defers the queue on the I/O loop, so
# virtio-rng on the same VM keeps answering meanwhile. Bounds are ratios to
# the configured rate: the upper one is the limiter's promise (the burst is
# counted), the lower one is loose, for slow or loaded KVMs (52% was seen
# with both cores of a 2-core host busy); both are meaningful only if the
# unlimited disk is much faster than the limit, which is checked.
# throttle_rate SPEC: "RATE REQS RNG" from a 4 MiB read in 64 KiB requests.
throttle_rate() {
	timeout -k 5 60 $WISP run --rng --disk "$TMP/rl.img$1" $UK/throttle.elf -- 4194304 65536 \
		>"$TMP/rl.out" 2>"$TMP/rl.err"
	sed -n 's/^throttle: 4194304 bytes in [0-9]* ns: \([0-9]*\) bytes\/s, \([0-9]*\) requests$/\1 \2/p' "$TMP/rl.out"
	sed -n 's/^throttle: rng \([0-9]*\) requests meanwhile.*/\1/p' "$TMP/rl.out"
}
# within NAME GOT WANT: GOT in [0.4, 1.15] x WANT
within() {
	if [ -z "$2" ]; then
		bad "$1" "no result: $(head -c 300 "$TMP/rl.out" "$TMP/rl.err")"
	elif [ $(($2 * 100)) -gt $(($3 * 115)) ] || [ $(($2 * 100)) -lt $(($3 * 40)) ]; then
		bad "$1" "$2 bytes/s, wanted $3 (0.4x to 1.15x)"
	else
		ok "$1 ($2 bytes/s for $3: $(($2 * 100 / $3))%)"
	fi
}
if kvm_ok; then
	truncate -s 4M "$TMP/rl.img"
	read -r free _ <<<"$(throttle_rate '' | head -1)"
	if [ -z "$free" ] || [ "$free" -lt $((3 << 20)) ]; then
		skipped rate-limits "the unlimited disk reads at ${free:-?} bytes/s here: too slow to tell a 1 MiB/s limit"
	else
		# 4 MiB at 1 MiB/s after a 256 KiB burst: about 3.75 s. (A burst
		# of a few requests keeps a late guest from losing tokens.)
		{ read -r rate reqs; read -r rng; } <<<"$(throttle_rate ',bw=1M,bw_burst=256K')"
		within disk-bandwidth-limited "$rate" $(((4194304 * 1048576) / (4194304 - 262144)))
		# The I/O loop never slept: the RNG answered many times per held-back
		# disk request (a sleeping loop gives it at most about one each).
		if [ "${rng:-0}" -ge $((2 * ${reqs:-64})) ]; then
			ok "rng-served-beside-limited-disk ($rng requests during $reqs disk requests)"
		else
			bad rng-served-beside-limited-disk "only ${rng:-no} rng requests during ${reqs:-?} disk requests"
		fi
		# 64 requests at 20/s after a burst of 20 (the default): 44 / 20 s.
		{ read -r rate reqs; read -r rng; } <<<"$(throttle_rate ',ops=20')"
		within disk-ops-limited "$rate" $((4194304 * 20 / 44))
		echo "rate limits: unlimited $free bytes/s"
	fi
	expect disk-limit-bad-value 125 '' "--disk '.*bw=fast': bw: must be bytes" -- $WISP run --disk "$TMP/rl.img,bw=fast" $UK/hello.elf
	expect disk-limit-burst-alone 125 '' 'bw_burst needs bw' -- $WISP run --disk "$TMP/rl.img,bw_burst=1M" $UK/hello.elf
else
	skipped rate-limits "no /dev/kvm"
fi

# --- socket modes are not the umask's (Why 8) -------------------------------------
# With umask 000 the console and vsock sockets would be 0777: anyone could
# type into the guest's console or open streams to it. They are 0600.
if kvm_ok; then
	(umask 000 && exec $WISP run --timeout 20s --console "virtio,sock=$TMP/con.sock" --vsock "$TMP/vs.sock" $UK/idle.elf >/dev/null 2>"$TMP/modes.err") &
	vmm=$!
	for _ in $(seq 100); do
		[ -S "$TMP/con.sock" ] && [ -S "$TMP/vs.sock" ] && break
		sleep 0.1
	done
	for s in con vs; do
		m=$(stat -c %a "$TMP/$s.sock" 2>/dev/null)
		if [ "$m" = 600 ]; then ok "$s-socket-0600-under-umask-000"; else bad "$s-socket-0600-under-umask-000" "mode ${m:-none}: $(head -c 200 "$TMP/modes.err")"; fi
	done
	kill $vmm 2>/dev/null
	wait $vmm 2>/dev/null
else
	skipped socket-modes "no /dev/kvm"
fi

# --- migration (Why 1): it trusts no one by default -----------------------------
# Two wispds here (source MA, target MB). Each receiver listens on one
# address; the stream is TLS 1.3 by a pre-shared key or certificates made
# now (certtool), cleartext only when both sides say so; the memory size is
# the receive request's; one deadline covers the whole receive.
MA=$TMP/ma MB=$TMP/mb
ma() { WISP_RUNTIME_DIR=$MA $WISP "$@"; }
mb() { WISP_RUNTIME_DIR=$MB $WISP "$@"; }
mig_field() { # mig_field RUNTIME_DIR VM KEY
	WISP_RUNTIME_DIR=$1 $WISP list --json | python3 -c "import json,sys
for v in json.load(sys.stdin):
    if v['name'] == '$2': print(v.get('$3', ''))"
}
mig_wait() { # mig_wait SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
mig_state_is() { [ "$(mig_field "$1" "$2" state)" = "$3" ]; }
mig_check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name" "'$*' failed"; fi
}
mig_stop() {
	for run in "$MA" "$MB"; do
		[ -f "$run/wispd.lock" ] || continue
		p=$(head -1 "$run/wispd.lock" 2>/dev/null)
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
		for d in "$run"/vms/* "$run"/shells/*; do
			[ -d "$d" ] || continue
			for q in $(pgrep -f -- "--id $(basename "$d") "); do kill -9 "$q" 2>/dev/null; done
		done
	done
	for q in $MIG_PIDS; do kill -9 "$q" 2>/dev/null; done
}
# A peer by hand (python3): the hello, byte by byte, or a counting relay.
MIG_PY=$TMP/migpeer.py
cat >"$MIG_PY" <<'PY'
import socket, struct, sys, time, select
mode, port = sys.argv[1], int(sys.argv[2])
if mode == "hello":  # hello MEM: send a hello for MEM bytes, print the answer
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    c.sendall(struct.pack("<QIIQ", 0x5047494d50534957, 1, 1, int(sys.argv[3])))
    m, v, st, why = struct.unpack("<QIi200s", c.recv(216, socket.MSG_WAITALL))
    print(st, why.rstrip(b"\0").decode())
elif mode == "loris":  # one byte of a hello every 2 s; print when we were cut off
    if len(sys.argv) > 3:  # loris PORT GOFILE: say "ready", connect once GOFILE exists
        import os
        print("ready", flush=True)
        for _ in range(1200):
            if os.path.exists(sys.argv[3]):
                break
            time.sleep(0.1)
    c = socket.create_connection(("127.0.0.1", port), timeout=120)
    hello = struct.pack("<QIIQ", 0x5047494d50534957, 1, 1, 32 << 20)
    t0 = time.monotonic()
    print("connected", flush=True)
    for i in range(len(hello)):
        try:
            c.send(hello[i:i + 1])
        except OSError:
            break
        r, _, _ = select.select([c], [], [], 2)
        if r:
            try:
                if not c.recv(1):
                    break
            except OSError:
                break
    print("cut after %.1f s" % (time.monotonic() - t0), flush=True)
elif mode == "count":  # count TARGET_PORT: relay one connection, count the source's bytes
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(1); s.settimeout(60)
    print("listening", flush=True)
    a, _ = s.accept()
    b = socket.create_connection(("127.0.0.1", int(sys.argv[3])))
    n, live = 0, True
    while live:
        r, _, _ = select.select([a, b], [], [], 30)
        if not r:
            break
        for x in r:
            try:
                d = x.recv(65536)
            except OSError:
                d = b""
            if not d:
                live = False
                break
            if x is a:
                n += len(d)
            (b if x is a else a).sendall(d)
    print("source sent %d bytes" % n, flush=True)
PY
if kvm_ok && command -v certtool >/dev/null; then
	expect mig-daemons-start 0 '' '' -- sh -c "WISP_RUNTIME_DIR=$MA $WISP daemon --pool none --answer-timeout 60s && WISP_RUNTIME_DIR=$MB $WISP daemon --pool none --answer-timeout 60s"
	KEY=$TMP/mig.key KEY2=$TMP/other.key
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY2"
	C=$TMP/certs
	mkdir -p "$C"
	printf 'cn = "wisp test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$C/ca.tmpl"
	printf 'cn = "target"\nip_address = "127.0.0.1"\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' >"$C/srv.tmpl"
	printf 'cn = "source"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' >"$C/cli.tmpl"
	for ca in ca rogue; do
		certtool --generate-privkey --key-type ecdsa --outfile "$C/$ca.key"
		certtool --generate-self-signed --load-privkey "$C/$ca.key" --template "$C/ca.tmpl" --outfile "$C/$ca.pem"
	done >/dev/null 2>&1
	for c in srv:ca cli:ca evil:rogue; do
		n=${c%:*} ca=${c#*:} t=${c%:*}
		[ "$n" = evil ] && t=srv
		certtool --generate-privkey --key-type ecdsa --outfile "$C/$n.key"
		certtool --generate-certificate --load-privkey "$C/$n.key" --load-ca-certificate "$C/$ca.pem" \
			--load-ca-privkey "$C/$ca.key" --template "$C/$t.tmpl" --outfile "$C/$n.pem"
	done >/dev/null 2>&1
	P=$((20000 + RANDOM % 20000))

	# Bound only to the address given; "every address" is refused.
	expect mig-receive-all-addresses-refused 125 '' "0.0.0.0:$P is every address" -- env WISP_RUNTIME_DIR=$MB $WISP receive --name r0 --listen 0.0.0.0:$P --mem 32M --psk "$KEY"
	expect mig-receive-unauthenticated-api 0 'the migration is authenticated' '' -- curl -s --unix-socket "$MB/wispd.sock" -d "{\"listen\": \"127.0.0.1:$P\", \"mem\": \"32M\"}" http://wispd/vms/receive
	mb receive --name r1 --listen 127.0.0.2:$P --mem 32M --psk "$KEY" >/dev/null
	socks=$(ss -Hltn "sport = :$P" | awk '{print $4}' | sort | tr '\n' ' ')
	if [ "$socks" = "127.0.0.2:$P " ]; then ok mig-receiver-bound-to-one-address
	else bad mig-receiver-bound-to-one-address "listening sockets on port $P: '$socks'"; fi
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $P), timeout=5)" 2>/dev/null; then
		bad mig-other-address-refused "127.0.0.1:$P accepted a connection"
	else ok mig-other-address-refused; fi

	# A peer without the key is refused; the receiver waits on; the real one succeeds.
	ma create --name v1 $UK/counter.elf -- 30 >/dev/null
	mig_wait 10 sh -c "WISP_RUNTIME_DIR=$MA $WISP console v1 | grep -q '^tick 3$'"
	expect mig-wrong-key-refused 125 '' "migration of 'v1' to 127.0.0.2:$P failed: .*(TLS handshake|hung up).*\(the VM still runs here\)" -- env WISP_RUNTIME_DIR=$MA $WISP migrate --psk "$KEY2" v1 127.0.0.2:$P
	mig_check mig-wrong-key-source-runs mig_state_is "$MA" v1 running
	mig_check mig-wrong-key-receiver-waits mig_state_is "$MB" r1 receiving
	mig_check mig-wrong-key-logged grep -q "refused a migration peer: 127.0.0.1:.*TLS" "$MB/wispd.log"
	expect mig-real-sender-after-refusal 0 "^migrated v1 to 127.0.0.2:$P" '' -- env WISP_RUNTIME_DIR=$MA $WISP migrate --psk "$KEY" v1 127.0.0.2:$P
	mig_check mig-received-vm-runs mig_wait 10 mig_state_is "$MB" r1 running
	mig_check mig-received-vm-counts mig_wait 10 sh -c "WISP_RUNTIME_DIR=$MB $WISP console r1 | grep -q '^tick'"

	# The size comes from the receive request: a hello that says otherwise is refused.
	P=$((P + 1))
	mb receive --name r2 --listen 127.0.0.1:$P --mem 64M --insecure-cleartext >/dev/null
	expect mig-hello-other-size-refused 0 '^-22 the VM has 32 MiB of memory, the receiver was asked for 64 MiB$' '' -- python3 "$MIG_PY" hello $P 33554432
	expect mig-hello-huge-refused 0 '^-22 the VM has 65536 MiB of memory' '' -- python3 "$MIG_PY" hello $P 68719476736
	ma create --name v2 $UK/counter.elf -- 30 >/dev/null
	expect mig-source-other-size-refused 125 '' 'refused the VM: the VM has 32 MiB of memory, the receiver was asked for 64 MiB \(the VM still runs here\)' -- env WISP_RUNTIME_DIR=$MA $WISP migrate --insecure-cleartext v2 127.0.0.1:$P
	mig_check mig-size-receiver-waits mig_state_is "$MB" r2 receiving
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$(mig_field "$MB" r2 pid)"/status)
	if [ "${rss:-999999}" -lt 60000 ]; then ok "mig-refused-hello-no-memory (${rss} KiB resident)"
	else bad mig-refused-hello-no-memory "the receiver holds ${rss} KiB"; fi
	mb destroy r2 >/dev/null

	# Slow-loris: a byte every 2 s. The deadline covers the whole receive,
	# so it is cut there; destroy answers meanwhile.
	# The peer is started (python3 can take seconds to start in the lab)
	# before the receive whose deadline it meets, and connects on a signal.
	P=$((P + 1))
	python3 "$MIG_PY" loris $P "$TMP/go3" >"$TMP/loris3" 2>&1 &
	lp=$!
	MIG_PIDS="$MIG_PIDS $lp"
	mig_wait 60 grep -q '^ready' "$TMP/loris3"
	t0=$EPOCHREALTIME
	mb receive --name r3 --listen 127.0.0.1:$P --mem 32M --insecure-cleartext --timeout 6s >/dev/null
	t1=$EPOCHREALTIME
	touch "$TMP/go3"
	wait $lp
	ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
	rq=$(((${t1/./} - ${t0/./}) / 1000))
	if grep -q '^cut after' "$TMP/loris3" && [ $ms -ge 5000 ] && [ $ms -le $((rq + 9000)) ]; then ok "mig-slow-loris-cut-at-deadline ($ms ms from the receive, which took $rq ms)"
	else bad mig-slow-loris-cut-at-deadline "$ms ms (receive $rq ms): $(cat "$TMP/loris3")"; fi
	mig_check mig-deadline-ends-receive mig_wait 5 sh -c "WISP_RUNTIME_DIR=$MB $WISP list | grep -qE '^r3 .*crashed.*no migration arrived within 6 s'"
	P=$((P + 1))
	python3 "$MIG_PY" loris $P "$TMP/go4" >"$TMP/loris4" 2>&1 &
	loris=$!
	MIG_PIDS="$MIG_PIDS $loris"
	mig_wait 60 grep -q '^ready' "$TMP/loris4"
	mb receive --name r4 --listen 127.0.0.1:$P --mem 32M --insecure-cleartext --timeout 60s >/dev/null
	touch "$TMP/go4"
	mig_wait 20 grep -q '^connected' "$TMP/loris4"
	sleep 3
	t0=$EPOCHREALTIME
	expect mig-destroy-while-loris 0 '' '' -- env WISP_RUNTIME_DIR=$MB $WISP destroy r4
	ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
	# Prompt: far below the 60 s the loris could hold it (a loaded lab
	# took 4.2 s once; a destroy waiting for the loris would take ~57 s).
	if [ $ms -le 15000 ]; then ok "mig-destroy-prompt ($ms ms)"; else bad mig-destroy-prompt "destroy took $ms ms"; fi
	wait $loris
	mig_check mig-loris-dropped-on-destroy grep -q '^cut after' "$TMP/loris4"

	# The sender checks the target before any guest memory goes out: through
	# a relay that counts, a target with another key or an untrusted
	# certificate gets fewer bytes than one page.
	ma create --name v3 $UK/counter.elf -- 30 >/dev/null
	mig_wait 10 sh -c "WISP_RUNTIME_DIR=$MA $WISP console v3 | grep -q '^tick 3$'"
	for how in key cert; do
		P=$((P + 2))
		if [ $how = key ]; then
			mb receive --name r5$how --listen 127.0.0.1:$P --mem 32M --psk "$KEY2" >/dev/null
			auth="--psk $KEY" want='TLS handshake|hung up'
		else
			mb receive --name r5$how --listen 127.0.0.1:$P --mem 32M --ca "$C/ca.pem" --cert "$C/evil.pem" --key "$C/evil.key" >/dev/null
			auth="--ca $C/ca.pem --cert $C/cli.pem --key $C/cli.key" want="the target's certificate refused: The certificate is NOT trusted"
		fi
		python3 "$MIG_PY" count $((P + 1)) $P >"$TMP/count" 2>&1 &
		cnt=$!
		MIG_PIDS="$MIG_PIDS $cnt"
		mig_wait 10 grep -q listening "$TMP/count"
		expect mig-wrong-target-$how-refused 125 '' "$want" -- env WISP_RUNTIME_DIR=$MA $WISP migrate $auth v3 127.0.0.1:$((P + 1))
		wait $cnt
		n=$(sed -n 's/^source sent \([0-9]*\) bytes$/\1/p' "$TMP/count")
		if [ -n "$n" ] && [ "$n" -lt 4096 ]; then ok "mig-wrong-target-$how-no-memory-sent ($n bytes)"
		else bad mig-wrong-target-$how-no-memory-sent "the source sent '$n' bytes: $(cat "$TMP/count")"; fi
		mig_check mig-wrong-target-$how-source-runs mig_state_is "$MA" v3 running
		mb destroy r5$how >/dev/null
	done

	# Cleartext only when both ask for it by name.
	P=$((P + 2))
	mb receive --name r7 --listen 127.0.0.1:$P --mem 32M --psk "$KEY" >/dev/null
	expect mig-cleartext-to-tls-refused 125 '' "no answer to the migration hello" -- env WISP_RUNTIME_DIR=$MA $WISP migrate --insecure-cleartext v3 127.0.0.1:$P
	mig_check mig-cleartext-to-tls-receiver-waits mig_state_is "$MB" r7 receiving
	mb destroy r7 >/dev/null
	P=$((P + 1))
	mb receive --name r8 --listen 127.0.0.1:$P --mem 32M --insecure-cleartext >/dev/null
	expect mig-tls-to-cleartext-refused 125 '' "TLS handshake|hung up" -- env WISP_RUNTIME_DIR=$MA $WISP migrate --psk "$KEY" v3 127.0.0.1:$P
	mig_check mig-tls-to-cleartext-receiver-waits mig_state_is "$MB" r8 receiving
	expect mig-cleartext-both 0 "^migrated v3 to 127.0.0.1:$P" '' -- env WISP_RUNTIME_DIR=$MA $WISP migrate --insecure-cleartext v3 127.0.0.1:$P

	# Certificates both ways: the right ones work.
	P=$((P + 1))
	ma create --name v4 $UK/counter.elf -- 30 >/dev/null
	mb receive --name r9 --listen 127.0.0.1:$P --mem 32M --ca "$C/ca.pem" --cert "$C/srv.pem" --key "$C/srv.key" >/dev/null
	expect mig-client-cert-untrusted-refused 125 '' 'no answer to the migration hello' -- env WISP_RUNTIME_DIR=$MA $WISP migrate --ca "$C/ca.pem" --cert "$C/evil.pem" --key "$C/evil.key" v4 127.0.0.1:$P
	mig_check mig-client-cert-logged grep -q "the source's certificate refused" "$MB/wispd.log"
	expect mig-x509 0 "^migrated v4 to 127.0.0.1:$P" '' -- env WISP_RUNTIME_DIR=$MA $WISP migrate --ca "$C/ca.pem" --cert "$C/cli.pem" --key "$C/cli.key" v4 127.0.0.1:$P
	mig_check mig-x509-vm-runs mig_wait 10 mig_state_is "$MB" r9 running

	for log in $MA/wispd.log $MB/wispd.log; do
		if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$log" 2>/dev/null; then
			bad "mig-no-sanitizer-report-$(basename "$(dirname "$log")")" "$(grep -m1 -E 'Sanitizer|runtime error' "$log")"
		else
			ok "mig-no-sanitizer-report-$(basename "$(dirname "$log")")"
		fi
	done
	mig_stop
elif ! kvm_ok; then
	skipped migration-tests "no /dev/kvm"
else
	skipped migration-tests "certtool missing (scripts/deps.sh test: gnutls-bin)"
fi

# --- local trust (Why 4-7) -------------------------------------------------------
RUN=$TMP/run
export WISP_RUNTIME_DIR=$RUN
unset WISP_SOCKET
stop_daemon() {
	[ -f "$RUN/wispd.lock" ] && [ ! -L "$RUN/wispd.lock" ] || return 0
	p=$(head -1 "$RUN/wispd.lock" 2>/dev/null)
	[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	for d in "$RUN"/vms/* "$RUN"/shells/*; do
		[ -d "$d" ] || continue
		for q in $(pgrep -f -- "--id $(basename "$d") "); do kill -9 "$q" 2>/dev/null; done
	done
	sleep 0.2
}
trap 'stop_daemon; rm -rf "$TMP"' EXIT

mkdir -m 0777 "$TMP/rt777"
expect runtime-dir-writable-by-others-refused 125 '' 'runtime directory .*rt777: mode 0777 lets others write in it: refused' -- env WISP_RUNTIME_DIR=$TMP/rt777 $WISP daemon --pool 32M=0
if [ "$(id -u)" = 0 ]; then
	mkdir -m 0700 "$TMP/rtother" && chown 65534 "$TMP/rtother"
	expect runtime-dir-of-another-user-refused 125 '' 'runtime directory .*rtother: owned by uid 65534, not by us \(0\): refused' -- env WISP_RUNTIME_DIR=$TMP/rtother $WISP daemon --pool 32M=0
else
	skipped runtime-dir-of-another-user-refused "needs root to make a directory another user owns"
fi
mkdir -m 0700 "$TMP/rtlink" && echo precious >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/rtlink/wispd.lock"
expect lock-symlink-not-followed 125 '' 'wispd.lock: Too many levels of symbolic links' -- env WISP_RUNTIME_DIR=$TMP/rtlink $WISP daemon --pool 32M=0
if [ "$(cat "$TMP/victim")" = precious ]; then ok lock-symlink-target-untouched; else bad lock-symlink-target-untouched "the symlink's target was overwritten: $(head -c 100 "$TMP/victim")"; fi

if kvm_ok; then
	expect daemon-starts 0 '' '' -- $WISP daemon --pool 32M=1 --api-max-conns 16 --api-conns-per-client 8 --api-idle-timeout 2s
	# --- API connections (Why 8): 100 idle connections and one that sends
	# half a request neither lock a new client out nor keep their slots past
	# the idle timeout (2 s here). Before: 512 such held the API 10 minutes.
	python3 - "$RUN/wispd.sock" "$WISP" >"$TMP/conns.out" 2>&1 <<'PY'
import socket, subprocess, sys, time
path, wisp = sys.argv[1], sys.argv[2]
idle = []
for _ in range(100):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    idle.append(s)
slow = socket.socket(socket.AF_UNIX)
slow.connect(path)
slow.send(b"GET /vms HTTP/1.1\r\nHost: wispd\r\n")  # headers never finished
idle.append(slow)
time.sleep(0.5)
t0 = time.time()
r = subprocess.run([wisp, "list"], capture_output=True, timeout=20)
print("list: exit %d in %.2f s %s" % (r.returncode, time.time() - t0, r.stderr[:200]))
time.sleep(4.5)  # the idle timeout (2 s, whole seconds) and a margin
still = 0
for s in idle:
    s.settimeout(0.2)
    try:
        if s.recv(1) != b"":
            still += 1  # an answer: not idle, not expected
    except socket.timeout:
        still += 1
    except OSError:
        pass
print("still open: %d of %d" % (still, len(idle)))
PY
	if grep -q '^list: exit 0 ' "$TMP/conns.out"; then
		ok "api-idle-connections-do-not-lock-out ($(sed -n 's/^list: exit 0 in \([0-9.]* s\).*/\1/p' "$TMP/conns.out"))"
	else
		bad api-idle-connections-do-not-lock-out "$(head -c 300 "$TMP/conns.out")"
	fi
	if grep -q '^still open: 0 of' "$TMP/conns.out"; then
		ok api-idle-connections-closed-after-timeout
	else
		bad api-idle-connections-closed-after-timeout "$(head -c 300 "$TMP/conns.out")"
	fi
	expect api-bad-idle-timeout 125 '' "--api-idle-timeout 'forever': must be a duration" -- $WISP daemon --api-idle-timeout forever
	m=$(stat -c %a "$RUN/wispd.sock" 2>/dev/null)
	if [ "$m" = 600 ]; then ok api-socket-0600; else bad api-socket-0600 "mode $m"; fi
	# A FIFO named as an image or a snapshot: refused at once, wispd still answers.
	mkfifo "$TMP/image.fifo"
	expect fifo-image-refused 125 '' 'not a regular file' -- $WISP create --name f1 "$TMP/image.fifo"
	expect fifo-snapshot-refused 125 '' 'not a regular file' -- $WISP restore --name f2 "$TMP/image.fifo"
	expect wispd-still-answers 0 '' '' -- $WISP list
	if [ "$(id -u)" = 0 ]; then
		# Another user, even with the socket's mode opened up by hand: the
		# peer's credentials are checked (SO_PEERCRED).
		chmod 0711 "$TMP" && chmod 0666 "$RUN/wispd.sock"
		expect api-peer-other-uid-refused 125 '' '' -- setpriv --reuid=65534 --regid=65534 --clear-groups env WISP_RUNTIME_DIR=$RUN $WISP list
		chmod 0600 "$RUN/wispd.sock"
		expect vm-created 0 '' '' -- $WISP create --name sleeper $UK/idle.elf
		id=$($WISP list --json | python3 -c "import json,sys; print([v['id'] for v in json.load(sys.stdin) if v['name']=='sleeper'][0])")
		sock=$RUN/vms/$id/ctl.sock
		chmod 0711 "$RUN/vms/$id" 2>/dev/null; chmod 0666 "$sock" 2>/dev/null
		# The intruder connects and sends a message; the VMM must hang up
		# without replacing wispd's connection: the VM stays controllable.
		setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])
s.settimeout(2)
try: s.send(b'x'*16); d=s.recv(100); sys.exit(0 if d==b'' else 1)
except (ConnectionResetError, BrokenPipeError): sys.exit(0)
except Exception as e: print(repr(e)); sys.exit(1)" "$sock"
		if [ $? = 0 ]; then ok ctl-sock-other-uid-hung-up; else bad ctl-sock-other-uid-hung-up "the VMM kept another user's connection"; fi
		expect vm-still-controlled 0 '' '' -- $WISP pause sleeper
		expect vm-destroyed 0 '' '' -- $WISP destroy sleeper
	else
		skipped api-peer-other-uid-refused "needs root to act as another user"
	fi
	stop_daemon
else
	skipped daemon-tests "no /dev/kvm"
fi


# --- jail (Deliver 1) -------------------------------------------------------------
# Every VMM of a root wispd is jailed; checked from outside, in /proc: a uid
# and gid of its own from the range, no capability in any set, no_new_privs,
# a mount namespace of its own whose only mounts are its empty tmpfs root and
# its /proc, and a cgroup with limits (where cgroup2 can delegate them).
# jail_vm_pid NAME: the VMM's pid, from wispd.
jail_vm_pid() {
	$WISP list --json 2>/dev/null | python3 -c "import json,sys; print([v.get('pid') or '' for v in json.load(sys.stdin) if v['name']==sys.argv[1]][0])" "$1" 2>/dev/null
}
# The cgroup2 mount, if it has the controllers the jail needs.
jail_cg_mnt() {
	m=$(awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo)
	[ -n "$m" ] && grep -qw memory "$m/cgroup.controllers" 2>/dev/null && grep -qw pids "$m/cgroup.controllers" && grep -qw cpu "$m/cgroup.controllers" && echo "$m"
}
# jail_check PREFIX PID FIRST LAST SUPERVISOR_PID: every outside check of a jailed VMM.
jail_check() {
	pre=$1 pid=$2 first=$3 last=$4 sup=$5
	st=/proc/$pid/status
	if [ -z "$pid" ] || [ ! -r "$st" ]; then
		bad "$pre-found" "no VMM process (pid '$pid')"
		return
	fi
	read -r _ u1 u2 u3 u4 <<<"$(grep '^Uid:' "$st")"
	read -r _ g1 g2 g3 g4 <<<"$(grep '^Gid:' "$st")"
	if [ "$u1" = "$u2" ] && [ "$u1" = "$u3" ] && [ "$u1" = "$u4" ] && [ "$u1" -ge "$first" ] && [ "$u1" -le "$last" ] && [ "$u1" != 0 ]; then ok "$pre-uid-from-range ($u1)"; else bad "$pre-uid-from-range" "Uid: $u1 $u2 $u3 $u4, range $first-$last"; fi
	if [ "$g1" = "$u1" ] && [ "$g2" = "$u1" ] && [ "$g3" = "$u1" ] && [ "$g4" = "$u1" ]; then ok "$pre-gid-from-range"; else bad "$pre-gid-from-range" "Gid: $g1 $g2 $g3 $g4"; fi
	caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' "$st" | awk '{print $2}' | sort -u)
	if [ "$caps" = 0000000000000000 ]; then ok "$pre-no-capabilities"; else bad "$pre-no-capabilities" "$(grep -E '^Cap' "$st" | tr '\n' ' ')"; fi
	if grep -q '^NoNewPrivs:[[:space:]]*1$' "$st"; then ok "$pre-no-new-privs"; else bad "$pre-no-new-privs" "$(grep NoNewPrivs "$st")"; fi
	mine=$(readlink /proc/"$pid"/ns/mnt) theirs=$(readlink /proc/"$sup"/ns/mnt)
	if [ -n "$mine" ] && [ "$mine" != "$theirs" ]; then ok "$pre-own-mount-namespace"; else bad "$pre-own-mount-namespace" "VMM $mine, supervisor $theirs"; fi
	mounts=$(awk '{print $4, $5, $(NF-2)}' /proc/"$pid"/mountinfo | sort | tr '\n' ';')
	if [ "$mounts" = "/ / tmpfs;/ /proc proc;" ] && ! grep -q "$TMP" /proc/"$pid"/mountinfo; then ok "$pre-root-is-jail (no host path)"; else bad "$pre-root-is-jail" "mounts: $mounts"; fi
	if ls -l /proc/"$pid"/fd 2>/dev/null | grep -qE 'wispd\.(sock|lock)'; then bad "$pre-fds-closed" "$(ls -l /proc/$pid/fd | grep -E 'wispd')"; else ok "$pre-fds-closed"; fi
	cg=$(jail_cg_mnt)
	if [ -z "$cg" ]; then
		skipped "$pre-cgroup-limits" "no cgroup2 hierarchy with memory, cpu and pids here"
		return
	fi
	path=$(sed -n 's/^0:://p' /proc/"$pid"/cgroup)
	mem=$(cat "$cg$path/memory.max" 2>/dev/null) pids=$(cat "$cg$path/pids.max" 2>/dev/null) cpu=$(cat "$cg$path/cpu.max" 2>/dev/null)
	case "$path" in /wisp/*) ;; *) path="not under /wisp: $path" ;; esac
	if [ "${path#/wisp/}" != "$path" ] && [ "$mem" -gt 0 ] 2>/dev/null && [ "$pids" -gt 0 ] 2>/dev/null && [ "${cpu%% *}" != max ]; then ok "$pre-cgroup-limits ($path: memory.max $mem, pids.max $pids, cpu.max $cpu)"; else bad "$pre-cgroup-limits" "cgroup $path: memory.max '$mem' pids.max '$pids' cpu.max '$cpu'"; fi
}

JAIL_FIRST=100000 JAIL_LAST=165535 # the default range (wisp run --jail uses it)
# A VM's own limits (its configuration's "limits", docs/config.md).
echo "{\"image\": \"$PWD/$UK/idle.elf\", \"limits\": {\"memory\": \"200M\", \"cpus\": 0.5, \"pids\": 40}}" >"$TMP/limits.json"
echo "{\"image\": \"$PWD/$UK/idle.elf\", \"limits\": {\"memory\": \"20M\"}}" >"$TMP/limits-small.json"
echo "{\"image\": \"$PWD/$UK/idle.elf\", \"limits\": {\"cpus\": 0}}" >"$TMP/limits-bad.json"
expect jail-limits-too-small 125 '' 'limits.memory: 20 MiB cannot hold the guest' -- $WISP run --config "$TMP/limits-small.json"
expect jail-limits-bad-cpus 125 '' 'limits.cpus: must be a number of CPUs from 0.01 to 1024' -- $WISP run --config "$TMP/limits-bad.json"
expect jail-limits-need-jail 125 '' 'limits need --jail' -- $WISP run --config "$TMP/limits.json"
if ! kvm_ok; then
	skipped jail "no /dev/kvm"
elif [ "$(id -u)" != 0 ]; then
	skipped jail "needs root (without it VMMs run unjailed: docs/security.md)"
else
	RUN=$TMP/jrun
	export WISP_RUNTIME_DIR=$RUN
	expect jail-bad-uid-range 125 '' "jail-uid-range '5-1': FIRST and LAST" -- $WISP daemon --jail-uid-range 5-1
	expect jail-daemon-starts 0 '' '' -- $WISP daemon --pool 32M=1 --jail-uid-range 200000-200009
	sup=$(head -1 "$RUN/wispd.lock")
	expect jail-vm1-created 0 '' '' -- $WISP create --name j1 $UK/idle.elf
	expect jail-vm2-created 0 '' '' -- $WISP create --name j2 $UK/idle.elf
	# Limits from the configuration: applied, or refused in one line where
	# cgroup2 cannot give them (never silently dropped).
	if [ -n "$(jail_cg_mnt)" ]; then
		expect jail-limits-created 0 '' '' -- $WISP create --name jl --config "$TMP/limits.json"
		pl=$(jail_vm_pid jl)
		path=$(sed -n 's/^0:://p' /proc/"$pl"/cgroup 2>/dev/null)
		got="$(cat "$(jail_cg_mnt)$path/memory.max" "$(jail_cg_mnt)$path/cpu.max" "$(jail_cg_mnt)$path/pids.max" 2>/dev/null | tr '\n' ' ')"
		if [ "$got" = "209715200 50000 100000 40 " ]; then ok "jail-limits-applied ($path: $got)"; else bad jail-limits-applied "cgroup '$path': '$got'"; fi
		expect jail-limits-vm-runs 0 'jl .* running' '' -- $WISP list
		expect jail-limits-vm-destroyed 0 '' '' -- $WISP destroy jl
	else
		expect jail-limits-refused-without-cgroup 125 '' 'asks for cgroup limits, which this host cannot give' -- $WISP create --name jl --config "$TMP/limits.json"
	fi
	p1=$(jail_vm_pid j1) p2=$(jail_vm_pid j2)
	jail_check jail-daemon "$p1" 200000 200009 "$sup"
	ju1=$(awk '/^Uid:/{print $2}' /proc/"$p1"/status 2>/dev/null) ju2=$(awk '/^Uid:/{print $2}' /proc/"$p2"/status 2>/dev/null)
	if [ -n "$ju1" ] && [ -n "$ju2" ] && [ "$ju1" != "$ju2" ]; then ok "jail-two-vms-two-uids ($ju1, $ju2)"; else bad jail-two-vms-two-uids "uids '$ju1' and '$ju2'"; fi
	# The VM still works: console output, and a save/restore round trip
	# (wispd opens the file, the jailed VMM writes into it).
	expect jail-hello-created 0 '' '' -- $WISP create --name jh $UK/hello.elf
	for _ in $(seq 50); do $WISP console jh 2>/dev/null | grep -q 'Hello from' && break; sleep 0.1; done
	expect jail-hello-output 0 'Hello from a Wisp unikernel' '' -- $WISP console jh
	expect jail-counter-created 0 '' '' -- $WISP create --name jc $UK/counter.elf
	sleep 0.5
	expect jail-save 0 'saved jc' '' -- $WISP save jc "$TMP/jail.snap"
	m=$(stat -c '%u %a' "$TMP/jail.snap" 2>/dev/null)
	if [ "$m" = "0 600" ]; then ok jail-snapshot-owned-by-wispd; else bad jail-snapshot-owned-by-wispd "owner and mode '$m'"; fi
	expect jail-restore 0 '' '' -- $WISP restore --name jr "$TMP/jail.snap"
	sleep 0.5
	expect jail-restored-runs 0 'tick' '' -- $WISP console jr
	jail_check jail-restored "$(jail_vm_pid jr)" 200000 200009 "$sup"
	expect jail-restored-saves 0 'saved jr' '' -- $WISP save jr "$TMP/jail2.snap"
	# wispd restarts: its VMs stay jailed and savable, the jails of its
	# old shells go.
	kill "$sup"
	for _ in $(seq 50); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
	expect jail-daemon-restarts 0 '' '' -- $WISP daemon --pool 32M=0 --jail-uid-range 200000-200009
	sup=$(head -1 "$RUN/wispd.lock")
	expect jail-adopted-saves 0 'saved jc' '' -- $WISP save jc "$TMP/jail3.snap"
	want=$($WISP list --json | python3 -c "import json,sys; print(' '.join(sorted(v['id'] for v in json.load(sys.stdin) if v['state'] in ('running','paused'))))")
	for _ in $(seq 20); do
		got=$(ls "$RUN/jail" | grep -v '^uids$' | sort | tr '\n' ' ' | sed 's/ $//')
		[ "$got" = "$want" ] && break
		sleep 0.1
	done
	if [ "$got" = "$want" ]; then ok jail-restart-keeps-only-live-jails; else bad jail-restart-keeps-only-live-jails "jail/ holds '$got', live VMs '$want'"; fi
	# Destroy: the jail directory, the cgroup and the uid all go.
	id1=$($WISP list --json | python3 -c "import json,sys; print([v['id'] for v in json.load(sys.stdin) if v['name']=='j1'][0])")
	cgp=$(sed -n 's/^0:://p' /proc/"$p1"/cgroup 2>/dev/null)
	[ -d "$RUN/jail/$id1" ] && ok jail-dir-exists || bad jail-dir-exists "no $RUN/jail/$id1"
	expect jail-vm1-destroyed 0 '' '' -- $WISP destroy j1
	for _ in $(seq 30); do [ -d /proc/"$p1" ] || break; sleep 0.1; done
	sleep 0.3
	[ ! -e "$RUN/jail/$id1" ] && ok jail-destroy-removes-dir || bad jail-destroy-removes-dir "$RUN/jail/$id1 still there"
	cg=$(jail_cg_mnt)
	if [ -z "$cg" ]; then
		skipped jail-destroy-removes-cgroup "no cgroup2 hierarchy with memory, cpu and pids here"
	elif [ -n "$cgp" ] && [ "${cgp#/wisp/}" != "$cgp" ] && [ ! -e "$cg$cgp" ]; then
		ok jail-destroy-removes-cgroup
	else
		bad jail-destroy-removes-cgroup "cgroup '$cgp' still there (or never was)"
	fi
	if [ -n "$ju1" ] && flock -n "$RUN/jail/uids/$ju1" true; then ok jail-destroy-frees-uid; else bad jail-destroy-frees-uid "uid '$ju1' still locked"; fi
	stop_daemon
	# The jail can be turned off: then the VMM runs as wispd's user.
	RUN=$TMP/jrun-off
	export WISP_RUNTIME_DIR=$RUN
	expect jail-off-daemon-starts 0 '' '' -- $WISP daemon --pool 32M=0 --jail off
	expect jail-off-vm-created 0 '' '' -- $WISP create --name o1 $UK/idle.elf
	u=$(awk '/^Uid:/{print $2}' /proc/"$(jail_vm_pid o1)"/status 2>/dev/null)
	if [ "$u" = 0 ]; then ok jail-off-runs-as-root; else bad jail-off-runs-as-root "uid '$u'"; fi
	stop_daemon
	# wisp run --jail: the same jail around a foreground VM, whose
	# supervisor (the wisp run process) stays outside.
	RUN=$TMP/jrun-fg
	export WISP_RUNTIME_DIR=$RUN
	expect jail-run-hello 0 'Hello from a Wisp unikernel' '' -- $WISP run --jail $UK/hello.elf
	# fd 7: a file the caller left open, which must not reach the jail.
	$WISP run --jail --name jfg $UK/counter.elf >"$TMP/jfg.out" 2>"$TMP/jfg.err" </dev/null 7<"$TMP/limits.json" &
	sup=$!
	for _ in $(seq 100); do [ -S "$RUN/run/jfg.sock" ] && grep -q tick "$TMP/jfg.out" && break; sleep 0.1; done
	child=$(pgrep -P $sup | head -1)
	jail_check jail-run "$child" "$JAIL_FIRST" "$JAIL_LAST" "$sup"
	if [ -n "$child" ] && ! ls -l /proc/"$child"/fd | grep -q limits.json; then ok jail-run-inherited-fds-closed; else bad jail-run-inherited-fds-closed "$(ls -l /proc/$child/fd 2>&1 | grep limits.json)"; fi
	expect jail-run-save 0 'saved jfg' '' -- $WISP save jfg "$TMP/jfg.snap"
	kill -TERM $sup
	wait $sup
	code=$?
	if [ "$code" = 143 ] && grep -q 'stopped by signal TERM' "$TMP/jfg.err"; then ok jail-run-sigterm-reaches-vm; else bad jail-run-sigterm-reaches-vm "exit $code: $(head -c 300 "$TMP/jfg.err")"; fi
	# Until it ticks, however long the loaded lab takes (a --timeout of 1 s
	# once ran out in CI while the host stalled both L1s for ~50 s).
	$WISP run --jail --restore "$TMP/jfg.snap" >"$TMP/jfr.out" 2>"$TMP/jfr.err" </dev/null &
	jr=$!
	if wait_for 60 grep -q '^tick' "$TMP/jfr.out"; then ok jail-run-restore; else bad jail-run-restore "no tick: $(head -c 300 "$TMP/jfr.err")"; fi
	kill -TERM $jr 2>/dev/null
	wait $jr
	code=$?
	if [ "$code" = 143 ]; then ok jail-run-restore-stops; else bad jail-run-restore-stops "exit $code: $(head -c 300 "$TMP/jfr.err")"; fi
	left=$(ls "$RUN/jail" 2>/dev/null | grep -v '^uids$'; ls "$RUN/run" 2>/dev/null)
	if [ -z "$left" ]; then ok jail-run-cleans-up; else bad jail-run-cleans-up "left behind: $left"; fi
fi


# --- one interrupt set-up for daemon and wisp run VMs (Why 12) ------------------
# The same image gets the same interrupt controllers whichever path builds
# it (vm_build_irqs): a pool shell's VM, saved, records what a `wisp run`
# VM's snapshot records (a CPL3 unikernel: the in-kernel LAPIC where KVM has
# split irqchips). A CPL0 image in a daemon gets none, so its HLT exits and
# is reported as `wisp run` reports it, and its snapshot restores into a
# shell, which is made again for it.
if kvm_ok; then
	IR=$TMP/irqd
	mkdir -m 700 "$IR" "$TMP/irqr"
	WISP_RUNTIME_DIR=$TMP/irqr $WISP run --name iqr $UK/counter.elf -- 30 >"$TMP/iqr.out" 2>&1 &
	IQ=$!
	wait_for 10 grep -q '^tick 2$' "$TMP/iqr.out"
	WISP_RUNTIME_DIR=$TMP/irqr $WISP save iqr "$TMP/iqr.snap" >/dev/null 2>&1
	kill -9 $IQ 2>/dev/null
	wait $IQ 2>/dev/null
	want=$($SNAPTOOL info "$TMP/iqr.snap" 2>&1 | sed -n 's/^interrupts: //p')
	if WISP_RUNTIME_DIR=$IR $WISP daemon --pool 32M=1 >/dev/null 2>"$TMP/iqd.err"; then
		wait_for 20 sh -c "WISP_RUNTIME_DIR=$IR $WISP stats | grep -q 'ready 1/1'"
		WISP_RUNTIME_DIR=$IR $WISP create --name iqd $UK/counter.elf -- 30 >/dev/null
		wait_for 10 sh -c "WISP_RUNTIME_DIR=$IR $WISP console iqd | grep -q '^tick 2$'"
		expect irq-setup-daemon-from-pool 0 '^created +from the pool' '' -- env WISP_RUNTIME_DIR=$IR $WISP stats iqd
		WISP_RUNTIME_DIR=$IR $WISP save iqd "$TMP/iqd.snap" >/dev/null
		got=$($SNAPTOOL info "$TMP/iqd.snap" 2>&1 | sed -n 's/^interrupts: //p')
		if [ -n "$want" ] && [ "$got" = "$want" ]; then
			ok "irq-setup-daemon-as-run (both: $got)"
		else
			bad irq-setup-daemon-as-run "wisp run: '$want', daemon: '$got'"
		fi
		WISP_RUNTIME_DIR=$IR $WISP create --name iqh $UK/halt-cpl0.elf >/dev/null
		wait_for 20 sh -c "WISP_RUNTIME_DIR=$IR $WISP list | grep -q '^iqh .* crashed'"
		expect irq-cpl0-daemon-halt-reported 0 '^iqh .* crashed .*guest halted \(HLT\)' '' -- env WISP_RUNTIME_DIR=$IR $WISP list
		# A CPL0 VM's snapshot (no LAPIC) restores into a pool shell.
		WISP_RUNTIME_DIR=$IR $WISP create --name iql $UK/loop-cpl0.elf -- 1000000000000 >/dev/null
		sleep 0.5
		WISP_RUNTIME_DIR=$IR $WISP save iql "$TMP/iql.snap" >/dev/null 2>"$TMP/iql.err"
		expect irq-cpl0-snapshot-has-none 0 '^interrupts: none$' '' -- $SNAPTOOL info "$TMP/iql.snap"
		expect irq-cpl0-restores-in-daemon 0 '^[0-9a-f]{12}$' '' -- env WISP_RUNTIME_DIR=$IR $WISP restore --name iql2 "$TMP/iql.snap"
		if wait_for 10 sh -c "WISP_RUNTIME_DIR=$IR $WISP list | grep -q '^iql2 .* running'"; then
			ok irq-cpl0-restored-runs
		else
			bad irq-cpl0-restored-runs "$(WISP_RUNTIME_DIR=$IR $WISP list 2>&1 | head -c 300)"
		fi
		kill "$(head -1 "$IR/wispd.lock")" 2>/dev/null
		for q in $(pgrep -f -- "--dir $IR/"); do kill -9 "$q" 2>/dev/null; done
	else
		bad irq-setup-daemon "wispd: $(head -c 300 "$TMP/iqd.err")"
	fi
else
	skipped irq-setup "no /dev/kvm"
fi

# --- exit storms (Deliver 7) -----------------------------------------------------
# A well-behaved VM (loop.elf) keeps its pace beside four VMs that make VM
# exits as fast as they can (attack.elf storm), as `wisp run` VMs and as
# daemon VMs (Why 12: daemon VMs died of triple faults under such load).
# Pass: its share (pace beside / pace alone) is at least a quarter of the
# fair share of the CPUs among five busy VMs (starvation is ~0; on a
# shared, loaded host the measured share swings between about half and all
# of the fair one: 19-38% of 40% here), and no stormer crashed.
# bench/storm.sh measures it (docs/benchmarks.md).
storm_check() {
	mode=$1
	WISP=$WISP UK=$UK timeout -k 5 300 bench/storm.sh 4 "$mode" >"$TMP/storm.out" 2>"$TMP/storm.err"
	line=$(grep '^storm: alone' "$TMP/storm.out")
	share=$(sed -n 's/.* share \([0-9]*\)% (fair \([0-9]*\)%.*/\1 \2/p' <<<"$line")
	read -r got fair <<<"$share"
	if [ -z "$got" ]; then
		bad "exit-storm-$mode" "no result: $(head -c 300 "$TMP/storm.out" "$TMP/storm.err")"
	elif ! grep -q 'crashed 0 of 4' <<<"$line"; then
		bad "exit-storm-$mode-no-crash" "$line; $(head -c 300 "$TMP/storm.err")"
	elif [ "$got" -lt $((fair / 4)) ]; then
		bad "exit-storm-$mode" "share $got% is under a quarter of the fair $fair%: $line"
	else
		ok "exit-storm-$mode (${line#storm: })"
	fi
}
if kvm_ok; then
	storm_check run
	storm_check daemon
else
	skipped exit-storms "no /dev/kvm"
fi

# --- saves (Deliver 3) -------------------------------------------------------------
# Saves go only into wispd's snapshot directory, or to a path the client
# may write: wispd opens it with the client's rights (SO_PEERCRED), as a
# temporary file renamed into place once the save succeeded.
SRUN=$TMP/srun
SNAPS=$TMP/snaps
sapi() { curl -s --unix-socket "$SRUN/wispd.sock" "$@"; }
stop_sdaemon() {
	[ -f "$SRUN/wispd.lock" ] && kill -TERM "$(head -1 "$SRUN/wispd.lock")" 2>/dev/null
	[ -n "$SMNT" ] && umount "$SMNT" 2>/dev/null
}
trap 'stop_daemon; stop_sdaemon; rm -rf "$TMP"' EXIT
if kvm_ok; then
	mkdir -p "$SRUN" && chmod 0700 "$SRUN"
	group=""
	[ "$(id -u)" = 0 ] && group="--api-group $(getent group 65534 | cut -d: -f1)"
	expect save-daemon-starts 0 '' '' -- env WISP_RUNTIME_DIR=$SRUN $WISP daemon --pool none \
		--snapshot-dir "$SNAPS" $group
	m=$(stat -c %a "$SNAPS" 2>/dev/null)
	if [ "$m" = 700 ]; then ok snapshot-dir-made-0700; else bad snapshot-dir-made-0700 "mode '$m'"; fi
	SW="env WISP_RUNTIME_DIR=$SRUN $WISP" # wisp, for this wispd
	$SW create --name sc1 $UK/counter.elf -- 30 >/dev/null
	expect save-relative-lands-in-dir 0 "^saved sc1 to $SNAPS/s1.snap " '' -- $SW save sc1 s1.snap
	if [ -f "$SNAPS/s1.snap" ]; then ok save-relative-file-there; else bad save-relative-file-there "no $SNAPS/s1.snap"; fi
	expect restore-relative-from-dir 0 '^[0-9a-f]{12}$' '' -- $SW restore --name sr1 s1.snap
	out=$(sapi -d '{"file": "../escape.snap"}' http://w/vms/sc1/save)
	if echo "$out" | grep -q "must be an absolute path or a plain name" && [ ! -e "$TMP/escape.snap" ]; then
		ok save-relative-path-refused
	else bad save-relative-path-refused "$out"; fi
	if [ "$(id -u)" = 0 ]; then
		chmod 0711 "$TMP" "$SRUN" # the API socket is 0660, group nogroup (--api-group)
		NOB="setpriv --reuid=65534 --regid=65534 --clear-groups $SW" # the same, as nobody
		mkdir -m 0700 "$TMP/rootonly" "$TMP/nobody"
		chown 65534:65534 "$TMP/nobody"
		# As another user: only where that user may write.
		expect save-outside-without-rights-refused 125 '' "cannot save VM 'sc1': .*rootonly.*Permission denied" -- \
			$NOB save sc1 "$TMP/rootonly/x.snap"
		if [ -z "$(ls -A "$TMP/rootonly")" ]; then ok save-refused-leaves-nothing; else bad save-refused-leaves-nothing "$(ls -A "$TMP/rootonly")"; fi
		expect save-outside-with-client-rights 0 "^saved sc1 to $TMP/nobody/n.snap " '' -- $NOB save sc1 "$TMP/nobody/n.snap"
		o=$(stat -c %u "$TMP/nobody/n.snap" 2>/dev/null)
		if [ "$o" = 65534 ]; then ok save-owned-by-client; else bad save-owned-by-client "owner '$o'"; fi
		expect save-in-dir-as-other-user 0 "^saved sc1 to $SNAPS/n2.snap " '' -- $NOB save sc1 n2.snap
		# A save that fails (a full file system) leaves the earlier file.
		SMNT=$TMP/smnt
		mkdir -p "$SMNT"
		if mount -t tmpfs -o size=2m none "$SMNT" 2>/dev/null; then
			$SW save sc1 "$SMNT/keep.snap" >/dev/null
			cp "$SMNT/keep.snap" "$TMP/keep.copy" 2>/dev/null
			$SW create --name big --mem 64M $UK/dirty.elf -- 4000 >/dev/null
			sleep 1
			expect failed-save-refused 125 '' "cannot save VM 'big': .*No space left on device" -- $SW save big "$SMNT/keep.snap"
			if cmp -s "$SMNT/keep.snap" "$TMP/keep.copy" && [ "$(ls -A "$SMNT")" = keep.snap ]; then
				ok failed-save-keeps-old
			else bad failed-save-keeps-old "$(ls -A "$SMNT" | tr '\n' ' ')"; fi
			$SW destroy big >/dev/null
		else
			skipped failed-save-refused "cannot mount a tmpfs"
			skipped failed-save-keeps-old "cannot mount a tmpfs"
		fi
	else
		for n in save-outside-without-rights-refused save-refused-leaves-nothing save-outside-with-client-rights \
			save-owned-by-client save-in-dir-as-other-user failed-save-refused failed-save-keeps-old; do
			skipped $n "needs root to act as another user"
		done
	fi
	$SW destroy sc1 sr1 >/dev/null 2>&1
	stop_sdaemon
else
	skipped save-tests "no /dev/kvm"
fi

# --- seccomp (Deliver 2) ------------------------------------------------------------
# seccomp_of PID: "MODE FILTERS" of every thread of PID, one line each.
seccomp_of() {
	for t in /proc/"$1"/task/*/status; do
		awk '/^Seccomp:/ {m=$2} /^Seccomp_filters:/ {f=$2} END {print m, f}' "$t" 2>/dev/null
	done
}
# all_threads NAME PID MODE: every thread of PID is in seccomp mode MODE
# (and, for mode 2, under at least one filter).
all_threads() {
	modes=$(seccomp_of "$2" | sort -u | tr '\n' ';')
	n=$(ls /proc/"$2"/task 2>/dev/null | wc -l)
	if [ -z "$modes" ]; then
		bad "$1" "process $2 is gone"
	elif [ "$3" = 2 ] && ! seccomp_of "$2" | awk '$1 != 2 || $2 < 1 {bad=1} END {exit bad}'; then
		bad "$1" "threads (mode filters): $modes"
	elif [ "$3" = 0 ] && [ "$modes" != "0 0;" ]; then
		bad "$1" "threads (mode filters): $modes"
	else
		ok "$1 ($n threads: $modes)"
	fi
}
# run_bg CMD...: start a `wisp run` in the background, $bgpid, after 1 s.
run_bg() {
	"$@" >"$TMP/bg.out" 2>"$TMP/bg.err" </dev/null &
	bgpid=$!
	sleep 1
}
RUN=$TMP/scrun
export WISP_RUNTIME_DIR=$RUN
if kvm_ok; then
	# A VM with a vCPU, an I/O loop (virtio-console) and the control thread.
	run_bg $WISP run --timeout 20s --name sc1 --console virtio $UK/hvc.elf
	all_threads run-every-thread-seccomp-2 $bgpid 2
	main=$(seccomp_of $bgpid | head -1)
	if [ "${main#2 }" -ge 2 ] 2>/dev/null; then ok "run-control-thread-own-filter ($main)"; else bad run-control-thread-own-filter "main thread: $main"; fi
	# Snapshots are made under the filters.
	expect run-save-under-filter 0 '^saved sc1' '' -- $WISP save sc1 $TMP/sc1.snap
	kill -TERM $bgpid; wait $bgpid 2>/dev/null
	vm_expect run-restore-under-filter 124 '' 'timeout of 2000 ms' -- $WISP run --restore $TMP/sc1.snap --name sc2 --timeout 2s
	if grep -q seccomp "$TMP/err"; then bad run-restore-no-trap "$(grep seccomp "$TMP/err")"; else ok run-restore-no-trap; fi
	run_bg $WISP run --timeout 20s --seccomp off --console virtio $UK/hvc.elf
	all_threads run-seccomp-off-mode-0 $bgpid 0
	kill -TERM $bgpid; wait $bgpid 2>/dev/null
	expect run-seccomp-bad-value 125 '' "--seccomp 'maybe': use on or off" -- $WISP run --seccomp maybe $UK/hello.elf
	# A forbidden call (the test hook: personality(2) once the filter is on)
	# ends the VMM with one line naming the call and the thread.
	vm_expect run-forbidden-control 123 '' 'seccomp: forbidden system call personality \(135\) on the control thread' -- env WISP_TEST_SECCOMP_VIOLATE=control $WISP run --timeout 10s $UK/hello.elf
	vm_expect run-forbidden-io 123 '' 'seccomp: forbidden system call personality \(135\) on the io thread' -- env WISP_TEST_SECCOMP_VIOLATE=io $WISP run --timeout 10s --console virtio $UK/hvc.elf
	vm_expect run-forbidden-other-vm-name 0 'Hello' '' -- env WISP_TEST_SECCOMP_VIOLATE=control:nothere $WISP run --timeout 10s --name sc3 $UK/hello.elf

	# Under wispd: every VMM confined; one that breaks its filter ends alone,
	# reported as crashed with the reason.
	export WISP_TEST_SECCOMP_VIOLATE=control:victim
	expect sc-daemon-starts 0 '' '' -- $WISP daemon --pool 32M=2
	expect sc-bystander-created 0 '' '' -- $WISP create --name bystander $UK/idle.elf
	expect sc-victim-created 0 '' '' -- $WISP create --name victim $UK/idle.elf
	unset WISP_TEST_SECCOMP_VIOLATE
	vm_json() { curl -s --unix-socket "$RUN/wispd.sock" "http://wispd/vms/$1"; }
	field() { python3 -c "import json,sys; print(json.load(sys.stdin).get('$1',''))"; }
	st=
	for _ in $(seq 50); do
		st=$(vm_json victim | field state)
		[ "$st" = crashed ] && break
		sleep 0.1
	done
	reason=$(vm_json victim | field reason)
	if [ "$st" = crashed ] && echo "$reason" | grep -q 'seccomp: forbidden system call personality (135) on the control thread'; then
		ok "wispd-forbidden-call-crashed ($reason)"
	else
		bad wispd-forbidden-call-crashed "state '$st', reason '$reason'"
	fi
	bpid=$(vm_json bystander | field pid)
	if [ "$(vm_json bystander | field state)" = running ] && kill -0 "$bpid" 2>/dev/null; then
		ok wispd-other-vm-keeps-running
	else
		bad wispd-other-vm-keeps-running "$(vm_json bystander)"
	fi
	[ -n "$bpid" ] && all_threads wispd-vmm-every-thread-seccomp-2 "$bpid" 2
	expect sc-bystander-destroyed 0 '' '' -- $WISP destroy bystander
	stop_daemon
	expect sc-daemon-off-starts 0 '' '' -- $WISP daemon --pool 32M=1 --seccomp off
	expect sc-off-created 0 '' '' -- $WISP create --name loose $UK/idle.elf
	opid=$(vm_json loose | field pid)
	[ -n "$opid" ] && all_threads wispd-seccomp-off-mode-0 "$opid" 0
	stop_daemon
else
	skipped seccomp-tests "no /dev/kvm"
fi

summary
