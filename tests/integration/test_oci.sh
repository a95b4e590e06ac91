#!/bin/bash
# wisp-oci, the OCI runtime (issue 14, docs/oci.md): the bare runtime on
# bundles (lifecycle, every bad input as one line), then Debian's engines
# calling it: podman with a unikernel image, containerd's ctr, and a Linux
# image with a published port answered by curl (where Linux guests can run).
# Usage: test_oci.sh (from the repo root; OCI, WISP, UK select the binaries).
cd "$(dirname "$0")/../.." || exit 1
SUITE=oci
. tests/integration/lib.sh
OCI=$(realpath "${OCI:-build/asan/wisp-oci}")
R=$TMP/root
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

if ! kvm_ok; then
	echo "SKIPPED: no /dev/kvm: every VM test below is skipped"
fi

# bundle DIR CONFIG_JSON: a bundle with the test unikernels in its rootfs.
bundle() {
	mkdir -p "$1/rootfs/bin"
	cp "$UK/echo.elf" "$1/rootfs/bin/echo"
	cp "$UK/exit.elf" "$1/rootfs/exit"
	cp "$UK/spin.elf" "$1/rootfs/spin"
	printf '%s\n' "$2" >"$1/config.json"
}
cfg() { # cfg ARGS_JSON [EXTRA_TOP_LEVEL_JSON]
	echo "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":$1,\"cwd\":\"/\",\"env\":[\"PATH=/bin:/\"]},\"root\":{\"path\":\"rootfs\"}${2:+,$2}}"
}
o() { "$OCI" --root "$R" "$@"; }
status_is() { o state "$1" 2>/dev/null | grep -q "\"status\": \"$2\""; }
wait_status() { # wait_status ID STATUS: up to 10 s
	for _ in $(seq 200); do
		status_is "$1" "$2" && return 0
		sleep 0.05
	done
	return 1
}
# one_line NAME CMD...: fails with exit 1 and exactly one line on stderr.
one_line() {
	name=$1
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	got=$?
	n=$(wc -l <"$TMP/err")
	if [ "$got" = 1 ] && [ "$n" = 1 ] && ! grep -q Sanitizer "$TMP/err"; then
		ok "$name ($(head -c 140 "$TMP/err"))"
	else
		bad "$name" "exit $got, $n lines: $(head -c 300 "$TMP/err")"
	fi
}

# --- the bare runtime --------------------------------------------------------
B=$TMP/b1
bundle "$B" "$(cfg '["echo","one","two words"]')"
expect "--version names the spec" 0 '^spec: 1\.0' '' -- "$OCI" --version
expect "features is JSON" 0 '"hooks"' '' -- sh -c "'$OCI' features | python3 -m json.tool"
expect "exec fails with a clear error" 1 '' 'exec: not supported' -- "$OCI" --root "$R" exec x true
expect "create" 0 '' '' -- "$OCI" --root "$R" create --bundle "$B" --pid-file "$TMP/pid" c1
if [ -s "$TMP/pid" ] && kill -0 "$(cat "$TMP/pid")" 2>/dev/null; then ok "the pid file names the VMM process"; else bad "pid file" "$(cat "$TMP/pid" 2>&1)"; fi
if status_is c1 created; then ok "state: created"; else bad "state: created" "$(o state c1 2>&1)"; fi
expect "create of an existing ID fails" 1 '' 'exists' -- "$OCI" --root "$R" create --bundle "$B" c1
if kvm_ok; then
	out=$TMP/c1.out
	# The VMM's stdout is create's: capture it by creating again with a file.
	o delete --force c1
	o create --bundle "$B" --pid-file "$TMP/pid" c1 >"$out" 2>&1
	# The split toolstack: `created` is a VM already built (its KVM VM
	# open in the VMM process, `wisp run` waiting), with no guest output.
	pid1=$(cat "$TMP/pid")
	if ls -l "/proc/$pid1/fd" 2>/dev/null | grep -q 'anon_inode:kvm-vm' &&
		tr '\0' ' ' <"/proc/$pid1/cmdline" | grep -q -- ' run --config ' && [ ! -s "$out" ]; then
		ok "created is a pre-created VM (built, guest not started)"
	else
		bad "pre-created VM" "pid $pid1: $(tr '\0' ' ' <"/proc/$pid1/cmdline" 2>&1) $(ls -l "/proc/$pid1/fd" 2>&1 | grep -c kvm) kvm fds; out: $(head -c 200 "$out")"
	fi
	expect "start" 0 '' '' -- "$OCI" --root "$R" start c1
	if wait_status c1 stopped; then ok "state: stopped after the guest exits"; else bad "state: stopped" "$(o state c1 2>&1)"; fi
	if grep -q '\[two words\]' "$out"; then ok "process.args reach the unikernel"; else bad "argv" "$(cat "$out")"; fi
	expect "start of a stopped container fails" 1 '' 'stopped' -- "$OCI" --root "$R" start c1
	expect "kill of a stopped container: not running" 1 '' 'container not running' -- "$OCI" --root "$R" kill c1 9
	expect "delete" 0 '' '' -- "$OCI" --root "$R" delete c1
	if [ ! -e "$R/c1" ]; then ok "delete removes the state"; else bad "delete" "$(ls "$R/c1")"; fi

	B2=$TMP/b2
	bundle "$B2" "$(cfg '["/spin"]')"
	o create --bundle "$B2" --pid-file "$TMP/pid2" c2 >/dev/null 2>&1
	expect "start (spin)" 0 '' '' -- "$OCI" --root "$R" start c2
	if status_is c2 running; then ok "state: running"; else bad "state: running" "$(o state c2 2>&1)"; fi
	expect "ps --format json" 0 "^\[$(cat "$TMP/pid2")\]$" '' -- "$OCI" --root "$R" ps --format json c2
	expect "delete of a running container fails" 1 '' 'not stopped: running' -- "$OCI" --root "$R" delete c2
	expect "pause" 0 '' '' -- "$OCI" --root "$R" pause c2
	if status_is c2 paused && grep -q 'State:.*T' "/proc/$(cat "$TMP/pid2")/status"; then ok "state: paused (VMM stopped)"; else bad "paused" "$(o state c2 2>&1)"; fi
	expect "resume" 0 '' '' -- "$OCI" --root "$R" resume c2
	if status_is c2 running; then ok "state: running again"; else bad "resume" "$(o state c2 2>&1)"; fi
	expect "kill by name" 0 '' '' -- "$OCI" --root "$R" kill c2 SIGTERM
	if wait_status c2 stopped; then ok "SIGTERM stops the VM"; else bad "kill TERM" "$(o state c2 2>&1)"; fi
	expect "delete after kill" 0 '' '' -- "$OCI" --root "$R" delete c2

	o create --bundle "$B2" c3 >/dev/null 2>&1
	o start c3
	pid3=$(o state c3 | grep -o '"pid": [0-9]*' | grep -o '[0-9]*$')
	expect "delete --force of a running container" 0 '' '' -- "$OCI" --root "$R" delete --force c3
	if [ -n "$pid3" ] && ! grep -qs 'State:.*[RST]' "/proc/$pid3/status"; then ok "the VMM is gone after delete --force"; else bad "delete --force" "pid $pid3 still there"; fi
	expect "delete --force of a created container" 0 '' '' -- sh -c "'$OCI' --root '$R' create --bundle '$B2' c4 && '$OCI' --root '$R' delete --force c4"
	expect "delete of a created container (as runc)" 0 '' '' -- sh -c "'$OCI' --root '$R' create --bundle '$B2' c5 && '$OCI' --root '$R' delete c5"
else
	skipped "lifecycle with a running VM" "no /dev/kvm"
fi

# a Kubernetes pod's sandbox (pause) container runs natively, in its rootfs
S=$TMP/sandbox
mkdir -p "$S/rootfs/bin" && cp /bin/busybox "$S/rootfs/bin/" && ln -s busybox "$S/rootfs/bin/sleep"
printf '%s\n' '{"ociVersion":"1.0.2","process":{"args":["sleep","300"],"env":["PATH=/bin"]},"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}' >"$S/config.json"
expect "CRI sandbox: create" 0 '' '' -- "$OCI" --root "$R" create --bundle "$S" --pid-file "$TMP/spid" pod1
expect "CRI sandbox: start" 0 '' '' -- "$OCI" --root "$R" start pod1
sleep 0.2
if status_is pod1 running && [ "$(readlink "/proc/$(cat "$TMP/spid")/exe")" != "$(readlink -f build/wisp)" ] &&
	grep -q sleep "/proc/$(cat "$TMP/spid")/cmdline"; then ok "CRI sandbox: the pause process runs natively"; else bad "sandbox" "$(o state pod1 2>&1)"; fi
expect "CRI sandbox: delete --force" 0 '' '' -- "$OCI" --root "$R" delete --force pod1

# unknown IDs: the words containerd and podman look for
expect "state of an unknown ID" 1 '' 'does not exist' -- "$OCI" --root "$R" state nosuch
expect "start of an unknown ID" 1 '' 'does not exist' -- "$OCI" --root "$R" start nosuch
expect "kill of an unknown ID" 1 '' 'does not exist' -- "$OCI" --root "$R" kill nosuch 9
expect "delete of an unknown ID" 1 '' 'does not exist' -- "$OCI" --root "$R" delete nosuch
o --log "$TMP/log.json" --log-format json kill nosuch 9 2>/dev/null
if python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); assert d["level"]=="error" and "does not exist" in d["msg"] and d["time"]' "$TMP/log.json"; then
	ok "--log-format json writes {level,msg,time} lines"
else
	bad "--log json" "$(cat "$TMP/log.json")"
fi

# every bad bundle, config.json, ID or option: one line, exit 1
X=$TMP/bad
mk() { rm -rf "$X" && bundle "$X" "$1"; }
# corrupt FILE: e_phoff far beyond the file; the Wisp note is still there.
corrupt() { printf '\377\377\377\377\377\377\377\177' | dd of="$1" bs=1 seek=32 conv=notrunc status=none; }
one_line "bundle missing" o create --bundle "$TMP/nonexistent" x
mk "$(cfg '["echo"]')" && rm "$X/config.json"
one_line "config.json missing" o create --bundle "$X" x
mk '{"ociVersion":'
one_line "config.json not JSON" o create --bundle "$X" x
mk '[1,2]'
one_line "config.json not an object" o create --bundle "$X" x
mk '{"ociVersion":"1.0.2","ociVersion":"1.0.2"}'
one_line "duplicate key" o create --bundle "$X" x
mk '{"ociVersion":"2.0.0","process":{"args":["echo"]},"root":{"path":"rootfs"}}'
one_line "ociVersion 2" o create --bundle "$X" x
mk '{"ociVersion":"1.0.2","root":{"path":"rootfs"}}'
one_line "process missing" o create --bundle "$X" x
mk "$(cfg '[]')"
one_line "process.args empty" o create --bundle "$X" x
mk "$(cfg '["echo",3]')"
one_line "process.args not strings" o create --bundle "$X" x
mk '{"ociVersion":"1.0.2","process":{"args":["echo"]}}'
one_line "root.path missing" o create --bundle "$X" x
mk "$(cfg '["nosuchprog"]')"
one_line "args[0] not in the rootfs" o create --bundle "$X" x
mk "$(cfg '["/../../../../bin/sh"]')"
one_line "args[0] cannot escape the rootfs" o create --bundle "$X" x
mk "$(cfg '["echo"]' '"linux":{"resources":{"memory":{"limit":"lots"}}}')"
one_line "memory.limit not an integer" o create --bundle "$X" x
mk "$(cfg '["echo"]' '"linux":{"resources":{"cpu":{"cpus":"0-x"}}}')"
one_line "cpu.cpus not a list" o create --bundle "$X" x
mk "$(cfg '["echo"]' '"hostname":"two words"')"
one_line "hostname with a space" o create --bundle "$X" x
mk "$(cfg '["echo"]' '"hooks":{"prestart":[{"path":"relative"}]}')"
one_line "hook path relative" o create --bundle "$X" x
mk '{"ociVersion":"1.0.2","process":{"terminal":true,"args":["echo"]},"root":{"path":"rootfs"}}'
one_line "terminal without --console-socket" o create --bundle "$X" x
mk "$(cfg '["echo"]')"
one_line "console socket path of 108 bytes" sh -c "sed -i 's/\"args\"/\"terminal\":true,\"args\"/' '$X/config.json' && '$OCI' --root '$R' create --bundle '$X' --console-socket /$(printf 'a%.0s' $(seq 120)) x"
mk "$(cfg '["echo"]')"
corrupt "$X/rootfs/bin/echo"
one_line "corrupt unikernel" o create --bundle "$X" x
one_line "bad ID" o create --bundle "$X" '../escape'
one_line "bad ID (too long)" o state "$(printf 'i%.0s' $(seq 200))"
one_line "unknown option" o create --bogus x
one_line "unknown signal" o kill x SIGNOPE
one_line "--root relative" "$OCI" --root rel state x
mkdir -p "$TMP/openroot" && chmod 777 "$TMP/openroot"
one_line "--root writable by others" "$OCI" --root "$TMP/openroot" state x
ln -s "$R" "$TMP/linkroot"
one_line "--root a symbolic link" "$OCI" --root "$TMP/linkroot" state x
mkdir -p "$R/bogus" && echo '{"id":' >"$R/bogus/state.json"
one_line "corrupt state.json" o state bogus
expect "delete --force removes a corrupt state" 0 '' '' -- "$OCI" --root "$R" delete --force bogus
if [ "$(ls "$R")" = "" ]; then ok "failed creates leave no state behind"; else bad "leftover state" "$(ls "$R")"; fi

# hooks get the state on stdin
H=$TMP/hooked
bundle "$H" "$(cfg '["echo","hooked"]' "\"hooks\":{\"prestart\":[{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"cat > $TMP/prestart.json\"]}],\"createRuntime\":[{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"cat > $TMP/cr.json\"]}],\"poststop\":[{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"cat > $TMP/poststop.json\"]}]}")"
o create --bundle "$H" hk >/dev/null 2>&1
if grep -q '"id":"hk"' "$TMP/prestart.json" 2>/dev/null && grep -q '"pid":[1-9]' "$TMP/cr.json" 2>/dev/null; then ok "prestart and createRuntime hooks get the state on stdin"; else bad "hooks" "$(cat "$TMP/prestart.json" 2>&1)"; fi
o delete --force hk
if grep -q '"id":"hk"' "$TMP/poststop.json" 2>/dev/null; then ok "poststop hook runs at delete"; else bad "poststop" "missing"; fi
bundle "$H" "$(cfg '["echo"]' '"hooks":{"createRuntime":[{"path":"/bin/false"}]}')"
one_line "a failing createRuntime hook fails create" o create --bundle "$H" hk2
[ ! -e "$R/hk2" ] && ok "and leaves no state" || bad "hook failure state" "$(ls "$R")"

# Linux images: the packed rootfs is cached under ROOT/@cache by content
LB=$TMP/linux
mkdir -p "$LB/rootfs/bin" && cp /bin/busybox "$LB/rootfs/bin/" && ln -s busybox "$LB/rootfs/bin/sh" && ln -s busybox "$LB/rootfs/bin/cat"
printf '%s\n' '{"ociVersion":"1.0.2","process":{"args":["sh","-c","echo hi"],"env":["PATH=/bin"]},"root":{"path":"rootfs"}}' >"$LB/config.json"
expect "Linux image: create packs the rootfs" 0 '' '' -- "$OCI" --root "$R" create --bundle "$LB" lx1
expect "Linux image: a second create" 0 '' '' -- "$OCI" --root "$R" create --bundle "$LB" lx2
echo changed >"$LB/rootfs/new-file"
expect "Linux image: a create after the rootfs changed" 0 '' '' -- "$OCI" --root "$R" create --bundle "$LB" lx3
i1=$(stat -c %i "$R/lx1/image.lz4" 2>/dev/null) i2=$(stat -c %i "$R/lx2/image.lz4" 2>/dev/null) i3=$(stat -c %i "$R/lx3/image.lz4" 2>/dev/null)
if [ -n "$i1" ] && [ "$i1" = "$i2" ]; then ok "the same rootfs is packed once (cached)"; else bad "cache hit" "$i1 $i2"; fi
if [ -n "$i3" ] && [ "$i3" != "$i1" ]; then ok "a changed rootfs is packed again"; else bad "cache miss" "$i1 $i3"; fi
grep -q '"kind": "linux"' "$R/lx1/vm.json" && ok "vm.json: a Linux VM" || bad "vm.json" "$(cat "$R/lx1/vm.json")"
for c in lx1 lx2 lx3; do o delete --force $c; done
rm -rf "$R/@cache"

# Bind mounts become disks (Linux images): an ext4 copy of the source made at
# create; what the VM provides itself (proc, /dev/..., the engine's
# /etc/hosts...) makes none. Checked here without a VM: the image's content
# with debugfs, the disks and the command line tinit reads in vm.json.
VOL=$TMP/vol
mkdir -p "$VOL/sub" && echo "data from the host" >"$VOL/file" && echo deep >"$VOL/sub/f2"
echo "hosts of the engine" >"$TMP/hosts"
mnt() { # mnt DEST SOURCE OPTIONS_JSON: a bind mount entry
	echo "{\"destination\":\"$1\",\"type\":\"bind\",\"source\":\"$2\",\"options\":$3}"
}
podman_mounts='{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs"},{"destination":"/dev/shm","type":"bind","source":"'$TMP'","options":["bind"]},{"destination":"/sys","type":"sysfs","source":"sysfs"},'"$(mnt /etc/hosts "$TMP/hosts" '["rbind"]')"
lcfg() { # lcfg ARGS_JSON MOUNTS_JSON_ENTRIES
	echo "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":$1,\"env\":[\"PATH=/bin\"]},\"root\":{\"path\":\"rootfs\"},\"mounts\":[$2]}"
}
lcfg '["sh","-c","cat /data/file"]' "$podman_mounts,$(mnt /data/ "$VOL" '["rbind","ro","nosuid","nodev"]'),$(mnt '/w x' "$VOL/sub" '["bind"]')" >"$LB/config.json"
expect "bind mounts: create" 0 '' '' -- "$OCI" --root "$R" create --bundle "$LB" lxm
if [ "$(python3 -c 'import json,sys; print([(d["path"].rsplit("/",1)[1], d.get("read_only",False)) for d in json.load(open(sys.argv[1]))["devices"] if d["type"]=="virtio-blk"])' "$R/lxm/vm.json" 2>&1)" = "[('mount0.ext4', True), ('mount1.ext4', False)]" ]; then
	ok "bind mounts: one disk per directory bind (ro kept), none for /proc, /dev/shm, /etc/hosts"
else
	bad "bind mount disks" "$(cat "$R/lxm/vm.json" 2>&1)"
fi
if grep -q 'wisp.mount=0:rsd:/data wisp.mount=1:-:/w%20x"' "$R/lxm/vm.json"; then ok "bind mounts: tinit's wisp.mount= on the command line (destination cleaned, escaped)"; else bad "wisp.mount=" "$(grep cmdline "$R/lxm/vm.json")"; fi
if [ "$(/sbin/debugfs -R 'cat /file' "$R/lxm/mount0.ext4" 2>/dev/null)" = "data from the host" ] &&
	[ "$(/sbin/debugfs -R 'cat /sub/f2' "$R/lxm/mount0.ext4" 2>/dev/null)" = deep ] &&
	[ "$(/sbin/debugfs -R 'cat /f2' "$R/lxm/mount1.ext4" 2>/dev/null)" = deep ]; then
	ok "bind mounts: each disk is an ext4 copy of its source"
else
	bad "disk content" "$(/sbin/debugfs -R 'ls -l /' "$R/lxm/mount0.ext4" 2>&1 | head -5)"
fi
expect "bind mounts: delete" 0 '' '' -- "$OCI" --root "$R" delete --force lxm
[ ! -e "$R/lxm" ] && ok "bind mounts: delete removes the disks" || bad "disks after delete" "$(ls "$R/lxm")"
# A bad mount: one line, exit 1, no state left
lcfg '["sh"]' "$(mnt /data "$TMP/nonexistent" '["bind"]')" >"$LB/config.json"
one_line "bind mount: source missing" o create --bundle "$LB" lxb
lcfg '["sh"]' "$(mnt /etc/motd "$TMP/hosts" '["bind"]')" >"$LB/config.json"
one_line "bind mount: source not a directory" o create --bundle "$LB" lxb
lcfg '["sh"]' "$(for i in 1 2 3 4 5 6 7 8 9; do printf '%s,' "$(mnt /d$i "$VOL" '["bind"]')"; done | sed 's/,$//')" >"$LB/config.json"
one_line "bind mount: more than 8" o create --bundle "$LB" lxb
lcfg '["sh"]' "$(mnt data "$VOL" '["bind"]')" >"$LB/config.json"
one_line "bind mount: destination not absolute" o create --bundle "$LB" lxb
lcfg '["sh"]' "$(mnt /data/../../etc "$VOL" '["bind"]')" >"$LB/config.json"
one_line "bind mount: destination with .." o create --bundle "$LB" lxb
lcfg '["sh"]' '{"destination":"/data","type":"bind","options":["bind"]}' >"$LB/config.json"
one_line "bind mount: no source" o create --bundle "$LB" lxb
lcfg '["sh"]' '"notamount"' >"$LB/config.json"
one_line "bind mount: not an object" o create --bundle "$LB" lxb
[ ! -e "$R/lxb" ] && ok "bad mounts leave no state" || bad "bad mount state" "$(ls "$R/lxb")"
# Unikernels ignore mounts (no disks), even one whose source is missing.
bundle "$TMP/ukm" "$(cfg '["echo"]' "\"mounts\":[$(mnt /data "$TMP/nonexistent" '["bind"]')]")"
expect "unikernel: mounts ignored" 0 '' '' -- "$OCI" --root "$R" create --bundle "$TMP/ukm" ukm
if [ -e "$R/ukm/vm.json" ] && ! grep -q virtio-blk "$R/ukm/vm.json" && ! ls "$R/ukm" | grep -q ext4; then ok "unikernel: no disk for a bind mount"; else bad "unikernel mounts" "$(ls "$R/ukm")"; fi
o delete --force ukm 2>/dev/null
rm -rf "$R/@cache"

# --- Kubernetes: Debian's containerd loads the CRI runtime class -----------
if command -v containerd >/dev/null; then
	expect "containerd config dump: the wisp runtime class, BinaryName wisp-oci" 0 'BinaryName = "/usr/local/bin/wisp-oci"' '' -- sh -c "containerd --config contrib/oci/containerd-wisp.toml config dump | grep -A3 'runtimes.wisp.options]'"
	expect "containerd config dump: its runc shim" 0 'runtime_type = "io.containerd.runc.v2"' '' -- sh -c "containerd --config contrib/oci/containerd-wisp.toml config dump | sed -n '/runtimes.wisp]/,/runtimes.wisp.options]/p'"
else
	skipped "containerd config dump" "containerd not installed (scripts/deps.sh oci)"
fi

# --- podman ------------------------------------------------------------------
# From here on each engine command is capped at 120 s, not 30: the cap is a
# hang guard, and an engine's first call in a loaded lab (conmon, the shim,
# image unpacking) took 35 s of a 15 s median.
export EXPECT_TIMEOUT=120
if ! command -v podman >/dev/null; then
	skipped "podman" "not installed (scripts/deps.sh oci)"
elif ! kvm_ok; then
	skipped "podman" "no /dev/kvm"
else
	# Storage on tmpfs: in the lab / is 9p, where overlayfs cannot sit.
	P="podman --root $TMP/ps --runroot $TMP/pr --storage-driver vfs --cgroup-manager cgroupfs"
	RT="--runtime $OCI"
	(cd "$UK" && tar cf "$TMP/uk.tar" --transform 's,\.elf$,,' echo.elf exit.elf spin.elf)
	$P import "$TMP/uk.tar" localhost/wisp-uk:1 >/dev/null 2>&1
	mkdir -p "$TMP/bad" && cp "$UK/echo.elf" "$TMP/bad/echo" && corrupt "$TMP/bad/echo" && tar cf "$TMP/bad.tar" -C "$TMP/bad" echo
	$P import "$TMP/bad.tar" localhost/wisp-bad:1 >/dev/null 2>&1
	expect "podman run: argv printed" 0 '\[two words\]' '' -- $P run --rm --network none $RT localhost/wisp-uk:1 /echo one "two words"
	expect "podman run: exit code 7 propagated" 7 '' '' -- $P run --rm --network none $RT localhost/wisp-uk:1 /exit 7
	expect "podman run -d" 0 '^[0-9a-f]{64}$' '' -- $P run -d --name wspin --network none $RT localhost/wisp-uk:1 /spin
	expect "podman pause" 0 '' '' -- $P pause wspin
	expect "podman inspect: paused" 0 '^paused$' '' -- $P inspect wspin --format '{{.State.Status}}'
	expect "podman unpause" 0 '' '' -- $P unpause wspin
	expect "podman stop" 0 '' '' -- $P stop -t 5 wspin
	expect "podman: stop gives exit 143" 0 '^143$' '' -- $P inspect wspin --format '{{.State.ExitCode}}'
	expect "podman rm" 0 '' '' -- $P rm wspin
	expect "podman run -t (console socket)" 0 '\[tty\]' '' -- $P run --rm -t --network none $RT localhost/wisp-uk:1 /echo tty
	expect "podman: a missing program is 127" 127 '' 'no such file or directory' -- $P run --rm --network none $RT localhost/wisp-uk:1 /nonexistent
	# (stderr to stdout: podman says "OCI runtime error:", which lib.sh's
	# sanitizer check would take for UBSan's "runtime error:")
	expect "podman: a corrupt unikernel's error in podman's message" 126 'not a valid Wisp unikernel' '' -- sh -c "$P run --rm --network none $RT localhost/wisp-bad:1 /echo 2>&1"
	expect "podman exec fails clearly" 255 'exec: not supported' '' -- sh -c "$P run -d --name wx --network none $RT localhost/wisp-uk:1 /spin >/dev/null && $P exec wx true 2>&1; r=\$?; $P rm -f wx >/dev/null 2>&1; exit \$r"
fi

# --- containerd (ctr run --runc-binary) ---------------------------------------
if ! command -v containerd >/dev/null || ! command -v podman >/dev/null; then
	skipped "containerd" "containerd or podman not installed (scripts/deps.sh oci)"
elif ! kvm_ok; then
	skipped "containerd" "no /dev/kvm"
else
	C=$TMP/ctrd
	mkdir -p "$C"
	printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n' "$C" "$C" "$C" >"$C/config.toml"
	containerd --config "$C/config.toml" >"$C/log" 2>&1 &
	ctrd=$!
	CTR="ctr --address $C/sock -n wisp"
	for _ in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
	$P save --format oci-archive -o "$TMP/uk.oci" localhost/wisp-uk:1 >/dev/null 2>&1
	expect "ctr image import" 0 '' '' -- $CTR image import --snapshotter native "$TMP/uk.oci"
	expect "ctr run --runc-binary: argv" 0 '\[from-ctr\]' '' -- $CTR run --rm --snapshotter native --runc-binary "$OCI" localhost/wisp-uk:1 k1 /echo from-ctr
	expect "ctr run: exit code 7" 7 '' '' -- $CTR run --rm --snapshotter native --runc-binary "$OCI" localhost/wisp-uk:1 k2 /exit 7
	$CTR run -d --snapshotter native --runc-binary "$OCI" localhost/wisp-uk:1 k3 /spin >/dev/null 2>&1
	expect "ctr task pause" 0 '' '' -- $CTR task pause k3
	expect "ctr task ls: PAUSED" 0 'k3 .*PAUSED' '' -- $CTR task ls
	expect "ctr task resume" 0 '' '' -- $CTR task resume k3
	expect "ctr task kill" 0 '' '' -- $CTR task kill -s SIGKILL k3
	for _ in $(seq 100); do $CTR task ls 2>/dev/null | grep -q 'k3 .*STOPPED' && break; sleep 0.1; done
	expect "ctr task rm" 0 '' '' -- $CTR task rm k3
	expect "ctr container rm" 0 '' '' -- $CTR container rm k3
	kill $ctrd
	wait $ctrd 2>/dev/null
fi

# slow_expect: expect with a 600 s cap instead of 30 s (Linux images in the lab).
slow_expect() { EXPECT_TIMEOUT=600 expect "$@"; }

# --- a Linux image with -p, answered by curl (needs Linux guests) -------------
if ! command -v podman >/dev/null; then
	skipped "podman Linux image" "podman not installed"
elif ! ${WISP:-build/asan/wisp} check -q 2>/dev/null; then
	skipped "podman Linux image" "this KVM cannot run Linux guests (wisp check); the lab can"
else
	L=$TMP/lroot
	mkdir -p "$L/bin" "$L/www"
	cp /bin/busybox "$L/bin/" && for a in sh httpd id cat touch uname; do ln -s busybox "$L/bin/$a"; done
	echo "hello from a Wisp VM" >"$L/www/index.html"
	tar cf "$TMP/l.tar" -C "$L" .
	$P import --change 'CMD ["httpd","-f","-p","80","-h","/www"]' "$TMP/l.tar" localhost/wisp-httpd:1 >/dev/null 2>&1
	# create packs the rootfs (wisp image build) and the guest boots: minutes under TCG
	slow_expect "podman run -d -p 18080:80 a Linux image" 0 '' '' -- $P run -d --name web -p 18080:80 $RT localhost/wisp-httpd:1
	got=""
	for _ in $(seq 300); do
		got=$(curl -s -m 2 http://127.0.0.1:18080/ 2>/dev/null) && [ -n "$got" ] && break
		sleep 1
	done
	if [ "$got" = "hello from a Wisp VM" ]; then ok "curl reaches busybox httpd in the VM through -p"; else bad "curl -p" "got '$got'; $($P logs web 2>&1 | tail -5)"; fi
	webid=$($P inspect web --format '{{.Id}}' 2>/dev/null)
	# podman's own mounts (/proc, /dev/shm, /etc/hosts, resolv.conf...) make no disk
	if [ -n "$webid" ] && [ -e "/run/wisp-oci/$webid/vm.json" ] && ! grep -q virtio-blk "/run/wisp-oci/$webid/vm.json"; then
		ok "podman run of an ordinary image: no extra disk"
	else
		bad "podman's mounts" "$(grep -A3 devices "/run/wisp-oci/$webid/vm.json" 2>&1 | head -8)"
	fi
	slow_expect "podman stop (Linux)" 0 '' '' -- $P stop -t 10 web
	slow_expect "podman rm (Linux)" 0 '' '' -- $P rm web
	if [ -n "$webid" ] && [ ! -e "/run/wisp-oci/$webid" ]; then ok "rm leaves no wisp-oci state"; else bad "state after rm" "$(ls /run/wisp-oci)"; fi
	slow_expect "podman run a Linux image: args, env, cwd, user" 0 'args=a b env=bar cwd=/www uid=1000' '' -- $P run --rm --network none -e FOO=bar -w /www -u 1000:1000 $RT localhost/wisp-httpd:1 sh -c 'echo args=$0 $1 env=$FOO cwd=$(pwd) uid=$(id -u)' a b
	# the engine's hostname and DNS servers (its /etc/resolv.conf bind) reach the guest by ip=
	slow_expect "podman run --hostname --dns: the guest's hostname and resolv.conf" 0 '^wisphost nameserver 10\.9\.8\.7.?$' '' -- $P run --rm --hostname wisphost --dns 10.9.8.7 $RT localhost/wisp-httpd:1 sh -c 'echo $(uname -n) $(cat /etc/resolv.conf)'
	slow_expect "podman run a Linux image: exit code 7 propagated" 7 '' '' -- $P run --rm --network none $RT localhost/wisp-httpd:1 sh -c 'exit 7'
	# -v HOSTDIR:/data:ro: the VM sees a read-only copy of the directory
	slow_expect "podman run -v DIR:/data:ro: the VM reads the host's file" 0 '^data from the host.?$' '' -- $P run --rm --network none -v "$VOL:/data:ro" $RT localhost/wisp-httpd:1 cat /data/file
	slow_expect "podman run -v DIR:/data:ro: read-only in the VM" 0 '^ro.?$' '' -- $P run --rm --network none -v "$VOL:/data:ro" $RT localhost/wisp-httpd:1 sh -c 'touch /data/new 2>/dev/null && echo rw || echo ro'
	# The bare runtime under a subreaper (as conmon is): the VMM it reaps
	# exits with the application's status; the disk is mounted for it.
	lcfg '["sh","-c","cat /data/sub/f2; exit 7"]' "$(mnt /data "$VOL" '["rbind"]')" >"$LB/config.json"
	cat >"$TMP/reaper.py" <<'PY'
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
oci, root, bundle, cid, out = sys.argv[1:6]
with open(out, "w") as f:
    subprocess.run([oci, "--root", root, "create", "--bundle", bundle, "--pid-file", out + ".pid", cid], stdout=f, stderr=f, check=True)
pid = int(open(out + ".pid").read())
subprocess.run([oci, "--root", root, "start", cid], check=True)
_, st = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(st))
PY
	slow_expect "bare runtime, a Linux bundle with a bind mount: the VMM exits 7" 0 '^exit 7$' '' -- python3 "$TMP/reaper.py" "$OCI" "$R" "$LB" lxe "$TMP/lxe.out"
	if grep -q '^deep' "$TMP/lxe.out"; then ok "bare runtime: the bind mount's file read in the VM"; else bad "bare mount" "$(tail -5 "$TMP/lxe.out")"; fi
	expect "bare runtime: stopped after the exit" 0 '"status": "stopped"' '' -- "$OCI" --root "$R" state lxe
	o delete lxe 2>/dev/null
fi

[ -n "${P:-}" ] && $P rm -af >/dev/null 2>&1
summary
