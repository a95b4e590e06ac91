#!/bin/bash
# What an operator watches: the logs (text as always, or JSON lines with
# --log-format json, from wispd, its VMMs and `wisp run`), `wisp top`
# (driven under tmux) and the progress of long work (a live line on a
# terminal, one summary line otherwise, nothing with --quiet).
# Usage: test_observability.sh (from the repo root; WISP selects the
# binary, whose directory also holds wispd and wisp-vmm; UK the images).
cd "$(dirname "$0")/../.." || exit 1
SUITE=observability
. tests/integration/lib.sh

export WISP_RUNTIME_DIR=$TMP/run
unset WISP_SOCKET
RUN=$WISP_RUNTIME_DIR
cleanup() {
	for r in "$TMP"/run*; do
		[ -f "$r/wispd.lock" ] && kill -9 "$(head -1 "$r/wispd.lock")" 2>/dev/null
		for d in "$r"/vms/* "$r"/shells/*; do
			[ -d "$d" ] || continue
			for p in $(pgrep -f -- "--id $(basename "$d") "); do kill -9 "$p" 2>/dev/null; done
		done
	done
	[ -n "${TMUX_SOCK:-}" ] && tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
wait_for() { # wait_for SECONDS CMD...
	local n=$(($1 * 20))
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}
check() { # check NAME CMD...
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name" "'$*' failed"; fi
}

# json_lines FILE [REQUIRE...]: every line of FILE is a JSON object with
# time (RFC 3339 UTC, ms), level, component, pid and msg; each REQUIRE
# (key=regex, e.g. vm=^[0-9a-f]{12}$ or msg=crashed) matches some one line.
json_lines() {
	python3 - "$@" <<'EOF'
import json, re, sys
path, reqs = sys.argv[1], sys.argv[2:]
lines = open(path, encoding="utf-8").read().splitlines()
if not lines:
    sys.exit("no lines")
objs = []
for n, l in enumerate(lines, 1):
    try:
        o = json.loads(l)
    except ValueError as e:
        sys.exit(f"line {n} is not JSON ({e}): {l[:200]}")
    if not isinstance(o, dict):
        sys.exit(f"line {n} is not an object")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(o.get("time"))):
        sys.exit(f"line {n}: bad time {o.get('time')!r}")
    if o.get("level") not in ("debug", "info", "warn", "error"):
        sys.exit(f"line {n}: bad level {o.get('level')!r}")
    if not isinstance(o.get("msg"), str) or not o["msg"]:
        sys.exit(f"line {n}: no msg")
    if not isinstance(o.get("pid"), int) or not isinstance(o.get("component"), str):
        sys.exit(f"line {n}: no pid or component")
    objs.append(o)
for r in reqs:
    conds = [c.split("=", 1) for c in r.split("&")]
    if not any(all(k in o and re.search(v, str(o[k])) for k, v in conds) for o in objs):
        sys.exit(f"no line has {r}")
EOF
}

# --- logs: errors in the options, no KVM needed --------------------------------
expect log-format-bad-run 125 '' "--log-format 'xml': must be text or json" -- $WISP run --log-format xml $UK/hello.elf
expect log-format-bad-wispd 125 '' "wispd: --log-format 'xml': must be text or json" -- $WISP daemon --log-format xml
printf 'log-format = yaml\n' >"$TMP/bad.conf"
expect log-format-bad-conf 125 '' "--log-format 'yaml': must be text or json" -- $WISP daemon --config "$TMP/bad.conf"

if ! kvm_ok; then
	skipped observability-vms "no /dev/kvm: the VM tests of logs, wisp top and progress are skipped"
	summary
	exit
fi

# --- logs of `wisp run`: text as before, JSON lines on request -----------------
expect log-run-text-timeout 124 '' '^wisp: guest stopped: --timeout of 300 ms elapsed$' -- $WISP run --timeout 300ms $UK/spin.elf
expect log-run-text-crash 126 '' '^wisp: guest crashed: #UD invalid opcode' -- $WISP run $UK/fault.elf -- ud
expect log-run-text-guest-error 0 '^vhostile: loop: ok$' '^wisp: virtio-rng: guest error: descriptor chain loops \(1 so far\)$' -- $WISP run --rng $UK/vhostile.elf -- loop
$WISP run --log-format json --timeout 300ms $UK/spin.elf >/dev/null 2>"$TMP/run1.json"
check log-run-json-timeout json_lines "$TMP/run1.json" 'level=^info$&component=^wisp$&msg=^guest stopped: --timeout of 300 ms elapsed$'
$WISP run --log-format json $UK/fault.elf -- ud >/dev/null 2>"$TMP/run2.json"
check log-run-json-crash json_lines "$TMP/run2.json" 'level=^error$&msg=^guest crashed: #UD invalid opcode'
$WISP run --log-format json --rng $UK/vhostile.elf -- loop >/dev/null 2>"$TMP/run3.json"
check log-run-json-guest-error json_lines "$TMP/run3.json" 'level=^warn$&msg=^virtio-rng: guest error: descriptor chain loops'

# --- logs of wispd and its VMMs -------------------------------------------------
vm_pid() { $WISP list --json | python3 -c "import json,sys
print(next(v['pid'] for v in json.load(sys.stdin) if v['name'] == '$1'))"; }
state_is() { $WISP list | awk -v n="$1" -v s="$2" '$1 == n && $3 == s { f = 1 } END { exit !f }'; }
log_daemon() { # log_daemon FORMAT: a wispd, a VM with a guest error, a VM killed
	rm -rf "$RUN"
	$WISP daemon --log-format "$1" --pool 32M=1 >/dev/null || return 1
	id_h=$($WISP create --name hostile --rng $UK/vhostile.elf -- loop) || return 1
	id_k=$($WISP create --name victim $UK/counter.elf -- 1000) || return 1
	wait_for 10 state_is hostile exited || return 1
	kill -9 "$(vm_pid victim)"
	wait_for 10 state_is victim crashed || return 1
	kill "$(head -1 "$RUN/wispd.lock")"
	wait_for 10 sh -c "! kill -0 $(head -1 "$RUN/wispd.lock")"
}
if log_daemon text; then
	check log-wispd-text-start grep -qE "^wispd: pid [0-9]+, listening on $RUN/wispd.sock, runtime directory $RUN, 0 VMs adopted\$" "$RUN/wispd.log"
	check log-wispd-text-vmm grep -qx "wisp-vmm: VM $id_h: virtio-rng: guest error: descriptor chain loops (1 so far)" "$RUN/wispd.log"
	check log-wispd-text-crash grep -qE "^wispd: VM $id_k: crashed \(name 'victim'\): VMM process killed by signal 9" "$RUN/wispd.log"
	check log-wispd-text-stop grep -qx "wispd: stopping; 2 VMs keep running" "$RUN/wispd.log"
	check log-wispd-text-no-json sh -c "! grep -q '^{' '$RUN/wispd.log'"
else
	bad log-wispd-text "the daemon run failed: $(tail -3 "$RUN/wispd.log" 2>/dev/null)"
fi
if log_daemon json; then
	check log-wispd-json json_lines "$RUN/wispd.log" \
		'component=^wispd$&level=^info$&msg=^pid [0-9]+, listening on' \
		"component=^wisp-vmm\$&vm=^$id_h\$&level=^warn\$&msg=^virtio-rng: guest error: descriptor chain loops" \
		"component=^wispd\$&vm=^$id_k\$&level=^error\$&msg=crashed \\(name 'victim'\\): VMM process killed by signal 9" \
		'component=^wispd$&msg=^stopping; 2 VMs keep running$'
else
	bad log-wispd-json "the daemon run failed: $(tail -3 "$RUN/wispd.log" 2>/dev/null)"
fi

# --- wisp top: batch frames, then the live screen under tmux --------------------
expect top-bad-sort 125 '' "top: -o 'bogus': not a column \(name, state, cpu, exits, mem, rss or io\)" -- $WISP top -o bogus
expect top-bad-delay 125 '' "top: -d '0': not a duration of at least 100ms" -- $WISP top -d 0
rm -rf "$RUN"
if $WISP daemon --pool 32M=1 >/dev/null &&
	$WISP create --name alpha --mem 128M $UK/counter.elf -- 20 >/dev/null &&
	$WISP create --name beta $UK/spin.elf >/dev/null &&
	$WISP create --name gamma --mem 64M $UK/counter.elf -- 200 >/dev/null; then
	ok top-vms-started
else
	bad top-vms-started "$(tail -3 "$RUN/wispd.log")"
fi
# rows_of FILE: the VM names of the last frame in FILE, in order.
rows_of() { awk '/^NAME +ID +STATE/ { n = "" ; on = 1; next } on && NF >= 9 { n = n $1 " " } END { print n }' "$1"; }
# col FILE VM COLUMN#: a VM's value in the last frame.
col() { awk -v vm="$2" -v c="$3" '$1 == vm { v = $c } END { print v }' "$1"; }
$WISP top -b -n 2 -d 500ms -o cpu >"$TMP/top.b" 2>"$TMP/top.err"
echo "exit $?" >>"$TMP/top.err"
check top-batch-exit grep -qx 'exit 0' "$TMP/top.err"
check top-batch-two-frames [ "$(grep -c '^NAME  *ID  *STATE  *PID  *CPU%  *EXITS/s  *MEM  *RSS  *IO/s$' "$TMP/top.b")" = 2 ]
check top-batch-header grep -qE '^VMs: 3, 3 running, 0 paused, 0 exited, 0 crashed; CPU [0-9.]+%' "$TMP/top.b"
check top-batch-rows [ "$(rows_of "$TMP/top.b" | wc -w)" = 3 ]
check top-batch-cpu-sort-spin-first [ "$(rows_of "$TMP/top.b" | cut -d' ' -f1)" = beta ]
check top-batch-mem [ "$(col "$TMP/top.b" alpha 7) $(col "$TMP/top.b" gamma 7)" = "128.0M 64.0M" ]
check top-batch-exits-rate awk -v v="$(col "$TMP/top.b" alpha 6)" 'BEGIN { exit !(v + 0 >= 10) }'
check top-batch-cpu-rate awk -v v="$(col "$TMP/top.b" beta 5)" 'BEGIN { exit !(v + 0 > 1) }'
check top-batch-state [ "$(col "$TMP/top.b" gamma 3)" = running ]

if ! command -v tmux >/dev/null; then
	skipped top-tmux "tmux is not installed (scripts/deps.sh test)"
else
	TMUX_SOCK=$TMP/tmux.sock
	tm() { tmux -S "$TMUX_SOCK" "$@"; }
	pane() { tm capture-pane -p -t top; }
	pane_has() { pane | grep -qE -- "$1"; }
	# The names in the pane's table, in order.
	pane_rows() { pane | awk '/^NAME +ID +STATE/ { on = 1; next } on && NF >= 9 { printf "%s ", $1 }'; }
	tm new-session -d -s top -x 120 -y 30 "env PS1='shell\$ ' bash --norc --noprofile -i"
	wait_for 10 pane_has 'shell\$'
	tm send-keys -t top "stty -a >$TMP/stty.before; $WISP top -d 500ms -o name --socket $RUN/wispd.sock; echo top-exit=\$?; stty -a >$TMP/stty.after" Enter
	if wait_for 15 pane_has '^gamma  '; then ok top-tmux-shows-vms; else bad top-tmux-shows-vms "$(pane)"; fi
	check top-tmux-columns pane_has '^NAME +ID +STATE +PID +CPU% +EXITS/s +MEM +RSS +IO/s'
	check top-tmux-header pane_has 'sorted by name'
	check top-tmux-name-order [ "$(pane_rows)" = "alpha beta gamma " ]
	check top-tmux-row pane_has '^alpha +[0-9a-f]{12} running +[0-9]+ +[0-9.]+ +[0-9]+ +128.0M'
	tm send-keys -t top m
	if wait_for 5 pane_has 'sorted by mem'; then ok top-tmux-key-m; else bad top-tmux-key-m "$(pane)"; fi
	check top-tmux-mem-order [ "$(pane_rows)" = "alpha gamma beta " ]
	tm send-keys -t top c
	if wait_for 5 pane_has 'sorted by cpu'; then ok top-tmux-key-c; else bad top-tmux-key-c "$(pane)"; fi
	check top-tmux-cpu-order [ "$(pane_rows | cut -d' ' -f1)" = beta ]
	tm send-keys -t top q
	if wait_for 5 pane_has '^top-exit=0'; then ok top-tmux-q-exits; else bad top-tmux-q-exits "$(pane)"; fi
	wait_for 5 test -s "$TMP/stty.after"
	# The terminal as it was: line mode and echo back, the screen the shell's.
	check top-tmux-tty-restored cmp -s <(grep -oE -- '-?(icanon|echo) ' "$TMP/stty.before") <(grep -oE -- '-?(icanon|echo) ' "$TMP/stty.after")
	check top-tmux-tty-line-mode grep -qE '(^| )icanon ' "$TMP/stty.after"
	check top-tmux-screen-back sh -c "! tmux -S '$TMUX_SOCK' capture-pane -p -t top | grep -q '^NAME '"
	# SIGTERM (and SIGINT) restore it as well.
	rm -f "$TMP/stty.after"
	tm send-keys -t top "clear; $WISP top --socket $RUN/wispd.sock; echo top-exit=\$?; stty -a >$TMP/stty.after" Enter
	wait_for 15 pane_has '^NAME '
	pkill -TERM -f -- "top --socket $RUN/wispd.sock"
	if wait_for 5 pane_has '^top-exit=0'; then ok top-tmux-sigterm-exits; else bad top-tmux-sigterm-exits "$(pane)"; fi
	wait_for 5 test -s "$TMP/stty.after"
	check top-tmux-sigterm-tty-restored grep -qE '(^| )icanon ' "$TMP/stty.after"
	rm -f "$TMP/stty.after"
	tm send-keys -t top "clear; $WISP top --socket $RUN/wispd.sock; echo top-exit=\$?; stty -a >$TMP/stty.after" Enter
	wait_for 15 pane_has '^NAME '
	tm send-keys -t top C-c
	if wait_for 5 pane_has '^top-exit=0'; then ok top-tmux-ctrl-c-exits; else bad top-tmux-ctrl-c-exits "$(pane)"; fi
	wait_for 5 test -s "$TMP/stty.after"
	check top-tmux-ctrl-c-tty-restored grep -qE '(^| )icanon ' "$TMP/stty.after"
	tm kill-server
fi
kill "$(head -1 "$RUN/wispd.lock")" 2>/dev/null

# --- progress of long work: one summary line off a terminal, a live line on
# one (script -qc gives a pty), nothing with --quiet ------------------------------
SUM=' [0-9.]+ (B|KiB|MiB|GiB) in [0-9.]+ s \([0-9.]+ (B|KiB|MiB|GiB)/s\)$'
# one_line FILE RE: FILE holds exactly one line, matching RE.
one_line() { [ "$(wc -l <"$1")" = 1 ] && grep -qE -- "$2" "$1"; }
rm -rf "$RUN"
if $WISP daemon --pool none >/dev/null && $WISP create --name p1 --mem 64M $UK/counter.elf -- 30 >/dev/null; then
	ok progress-vm-started
else
	bad progress-vm-started "$(tail -3 "$RUN/wispd.log")"
fi
$WISP save p1 "$TMP/p1.snap" >"$TMP/save.out" 2>"$TMP/save.err"
check progress-save-stdout-unchanged grep -qE "^saved p1 to $TMP/p1.snap \([0-9.]+ MiB of memory written, [0-9.]+ ms\)\$" "$TMP/save.out"
check progress-save-summary one_line "$TMP/save.err" "^wisp: save '$TMP/p1.snap':$SUM"
$WISP save --quiet p1 "$TMP/p1.snap" >/dev/null 2>"$TMP/saveq.err"
check progress-save-quiet [ ! -s "$TMP/saveq.err" ]
script -qec "$WISP save p1 $TMP/p1.snap" /dev/null >"$TMP/savet.out" 2>&1
# On a terminal: the live line (\r, bytes / total, %, rate, ETA), no summary.
check progress-save-tty-live grep -qaE $'\r'"wisp: save '$TMP/p1.snap': [0-9.]+ [KMG]?i?B / [0-9.]+ [KMG]?i?B \([0-9]+%\), [0-9.]+ [KMG]?i?B/s, ETA [0-9]+:[0-9]{2}" "$TMP/savet.out"
check progress-save-tty-no-summary sh -c "! grep -qaE ' in [0-9.]+ s \(' '$TMP/savet.out'"
script -qec "$WISP save --quiet p1 $TMP/p1.snap" /dev/null >"$TMP/saveqt.out" 2>&1
check progress-save-tty-quiet sh -c "! grep -qa \"wisp: save '\" '$TMP/saveqt.out'"

$WISP restore --name p2 "$TMP/p1.snap" >"$TMP/rest.out" 2>"$TMP/rest.err"
check progress-restore-prints-id grep -qxE '[0-9a-f]{12}' "$TMP/rest.out"
check progress-restore-summary one_line "$TMP/rest.err" "^wisp: restore '$TMP/p1.snap': 64.0 MiB in"
$WISP restore --quiet --name p3 "$TMP/p1.snap" >/dev/null 2>"$TMP/restq.err"
check progress-restore-quiet [ ! -s "$TMP/restq.err" ]

$WISP run --restore "$TMP/p1.snap" --verify --timeout 300ms >/dev/null 2>"$TMP/runr.err"
check progress-run-restore-summary grep -qE "^wisp: restore '$TMP/p1.snap':$SUM" "$TMP/runr.err"
$WISP run --restore "$TMP/p1.snap" --quiet --timeout 300ms >/dev/null 2>"$TMP/runrq.err"
check progress-run-restore-quiet sh -c "! grep -q 'wisp: restore' '$TMP/runrq.err'"
script -qec "$WISP run --restore $TMP/p1.snap --verify --timeout 300ms" /dev/null >"$TMP/runrt.out" 2>&1
check progress-run-restore-tty-live grep -qaE $'\r'"wisp: restore '$TMP/p1.snap': [0-9.]+ [KMG]?i?B / 64.0 MiB \([0-9]+%\)" "$TMP/runrt.out"

# A migration to a second daemon on this host.
R2=$TMP/run2
PORT=$((20000 + RANDOM % 20000))
KEY=$TMP/mig.key # migrations are authenticated (docs/migration.md#security)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"
if WISP_RUNTIME_DIR=$R2 $WISP daemon --pool none --answer-timeout 60s >/dev/null &&
	WISP_RUNTIME_DIR=$R2 $WISP receive --name p1 --listen 127.0.0.1:$PORT --mem 64M --psk "$KEY" >/dev/null; then
	$WISP migrate --psk "$KEY" p1 127.0.0.1:$PORT >"$TMP/mig.out" 2>"$TMP/mig.err"
	check progress-migrate-stdout-unchanged grep -qE "^migrated p1 to 127.0.0.1:$PORT: [0-9]+ rounds" "$TMP/mig.out"
	check progress-migrate-summary one_line "$TMP/mig.err" "^wisp: migrate p1:$SUM"
	PORT=$((PORT + 1))
	WISP_RUNTIME_DIR=$R2 $WISP receive --name p2 --listen 127.0.0.1:$PORT --mem 64M --psk "$KEY" >/dev/null
	$WISP migrate --quiet --psk "$KEY" p2 127.0.0.1:$PORT >/dev/null 2>"$TMP/migq.err"
	check progress-migrate-quiet [ ! -s "$TMP/migq.err" ]
	kill "$(head -1 "$R2/wispd.lock")" 2>/dev/null
else
	bad progress-migrate "the second daemon or its receive failed: $(tail -3 "$R2/wispd.log")"
fi
kill "$(head -1 "$RUN/wispd.lock")" 2>/dev/null

# wisp image build: the step on a terminal, the summary off one (a small
# image of a local binary: no download).
if command -v lz4 >/dev/null && [ -x /bin/busybox ]; then
	$WISP image build --binary /bin/true -o "$TMP/true.lz4" >/dev/null 2>"$TMP/img.err"
	check progress-image-summary one_line "$TMP/img.err" "^wisp image build '$TMP/true.lz4':$SUM"
	$WISP image build -q --binary /bin/true -o "$TMP/true.lz4" >/dev/null 2>"$TMP/imgq.err"
	check progress-image-quiet [ ! -s "$TMP/imgq.err" ]
	script -qec "$WISP image build --binary /bin/true -o $TMP/true.lz4" /dev/null >"$TMP/imgt.out" 2>&1
	check progress-image-tty-steps grep -qaE $'\r'"wisp image build '$TMP/true.lz4': pack: [0-9]+ entries" "$TMP/imgt.out"
else
	skipped progress-image "lz4 or busybox missing (scripts/deps.sh image)"
fi

# The guest-kernel build's progress line (guest/kernel/progress.sh), on a
# stand-in for make that prints three steps: a script file, not an exported
# function, since `script` runs its command with $SHELL (or /bin/sh, which
# drops exported functions when SHELL is unset, as in CI).
# With a second argument FILE, each step after the first waits (up to 60 s)
# until FILE shows the progress line: a loaded machine cannot outrun it.
cat >"$TMP/fake_make" <<'FAKE'
#!/bin/bash
for i in 1 2 3; do
	echo "  CC      f$i.o"
	if [ -n "${2:-}" ] && [ $i = 1 ]; then
		for t in $(seq 600); do grep -qa 'ETA' "$2" 2>/dev/null && break; sleep 0.1; done
	fi
	sleep 0.6
done
exit "${1:-0}"
FAKE
chmod +x "$TMP/fake_make"
kp() { # kp STATUS: build_progress over the fake make exiting STATUS
	bash -c ". guest/kernel/progress.sh; '$TMP/fake_make' $1 >'$TMP/k.log' 2>&1 & build_progress guest-kernel '$TMP/k.log' \$! '$TMP/k.steps'"
}
rm -f "$TMP/k.steps"
kp 0 2>"$TMP/k.err"
check kernel-progress-status-and-steps [ "$? $(cat "$TMP/k.steps")" = "0 3" ]
check kernel-progress-quiet-off-tty [ ! -s "$TMP/k.err" ]
script -qec "bash -c '. guest/kernel/progress.sh; $TMP/fake_make 0 $TMP/kt.out >$TMP/k.log 2>&1 & build_progress guest-kernel $TMP/k.log \$! $TMP/k.steps'" /dev/null >"$TMP/kt.out" 2>&1
if grep -qaE $'\r''guest-kernel: [1-3]/3 steps \([0-9]+%\), [0-9]+ s, ETA [0-9]+:[0-9]{2}' "$TMP/kt.out"; then ok kernel-progress-tty-eta
else bad kernel-progress-tty-eta "no ETA line in: $(tr '\r' '\n' <"$TMP/kt.out" | cat -v | tail -5 | tr '\n' '|')"; fi
kp 7 2>/dev/null
check kernel-progress-failure-status [ $? = 7 ]

summary
