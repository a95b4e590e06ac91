#!/bin/bash
# `wisp run` end to end: boots the test unikernels on /dev/kvm and checks
# output, exit codes and error messages. Usage: test_run.sh (from the repo
# root; WISP and UK select the binary and the images).
cd "$(dirname "$0")/../.." || exit 1
SUITE=run
. tests/integration/lib.sh

if ! kvm_ok; then
	echo "SKIPPED: no /dev/kvm (${WISP_KVM_DEVICE:-/dev/kvm} missing or not accessible): every VM test below is skipped"
fi

# --- guests that behave -------------------------------------------------------
vm_expect hello-greets 0 '^Hello from a Wisp unikernel!$' '' -- $WISP run $UK/hello.elf
vm_expect noop-exits-0 0 '' '' -- $WISP run $UK/noop.elf
vm_expect exit-status-42 42 '' '' -- $WISP run $UK/exit.elf -- 42
vm_expect exit-status-255 255 '' '' -- $WISP run $UK/exit.elf -- 255
vm_expect exit-status-direct 7 '' '' -- $WISP run $UK/exit.elf -- 7 direct
vm_expect args-reach-guest 0 '^\[b c\]$' '' -- $WISP run $UK/echo.elf -- a "b c" ''
vm_expect args-count 0 '^argc=4$' '' -- $WISP run $UK/echo.elf -- a "b c" ''
vm_expect clock-works 0 '^monotonic ok' '' -- $WISP run $UK/clock.elf
vm_expect big-memory 0 '^Hello' '' -- $WISP run --mem 4G $UK/hello.elf
vm_expect small-memory 0 '' '' -- $WISP run --mem 2M $UK/noop.elf
vm_expect cpl0-build-runs 0 '^loop: 1000 iterations' '' -- $WISP run $UK/loop-cpl0.elf -- 1000
vm_expect set-regs-path 0 '^Hello' '' -- env WISP_NO_SYNC_REGS=1 $WISP run $UK/hello.elf
vm_expect stats-printed 0 '' 'exits: io [0-9]+ .*hypercall [1-9]' -- $WISP run --stats $UK/hello.elf

# --- wisp check: where this suite runs, the host can run Wisp VMs -------------
vm_expect check-can-run 0 '^wisp check: this host can run Wisp VMs$' '' -- $WISP check
vm_expect check-quiet-prints-nothing 0 '' '' -- sh -c "out=\$($WISP check -q) && [ -z \"\$out\" ]"
expect check-no-device 1 "^wisp check: /nonexistent/kvm: No such file or directory .*kvm module loaded" '' -- env WISP_KVM_DEVICE=/nonexistent/kvm $WISP check
expect check-no-device-verdict 1 'cannot run Wisp VMs \(1 finding\)' '' -- env WISP_KVM_DEVICE=/nonexistent/kvm $WISP check
expect check-not-kvm 1 'KVM API version|Inappropriate ioctl' '' -- env WISP_KVM_DEVICE=/dev/null $WISP check
expect check-bad-option 125 '' 'usage: wisp check' -- $WISP check --frob
expect check-extra-argument 125 '' "wisp check: unexpected argument 'x'" -- $WISP check x

# --- wisp run --image: bad uses are refused before any guest runs -----------
expect image-needs-kernel 125 '' 'run: --image needs --kernel' -- $WISP run --image $UK/hello.elf
expect image-not-an-image 125 '' "image '$UK/hello.elf': " -- $WISP run --kernel /bin/true --image $UK/hello.elf
expect image-missing 125 '' "image '/nonexistent.img': " -- $WISP run --kernel /bin/true --image /nonexistent.img

# Wall clock from the guest is the host's (within 5 s).
if kvm_ok; then
	now=$(date +%s)
	g=$($WISP run $UK/clock.elf | sed -n 's/^wall \([0-9]*\)\..*/\1/p')
	if [ -n "$g" ] && [ $((g - now)) -le 5 ] && [ $((now - g)) -le 5 ]; then ok wall-clock-matches-host
	else bad wall-clock-matches-host "guest says '$g', host $now"; fi
else skipped wall-clock-matches-host "no /dev/kvm"; fi

# --- guests that fault: vector and RIP reported, exit 126 ---------------------
vm_expect fault-page 126 '' '#PF page fault \(vector 14\) at rip 0x[0-9a-f]+.*address 0xdead0000000' -- $WISP run $UK/fault.elf -- pf
vm_expect fault-null 126 '' '#PF page fault \(vector 14\) at rip 0x[0-9a-f]+.*address 0x8,' -- $WISP run $UK/fault.elf -- null
vm_expect fault-gp 126 '' '#GP general protection \(vector 13\) at rip 0x' -- $WISP run $UK/fault.elf -- gp
vm_expect fault-ud 126 '' '#UD invalid opcode \(vector 6\) at rip 0x' -- $WISP run $UK/fault.elf -- ud
vm_expect fault-divide 126 '' '#DE divide error \(vector 0\) at rip 0x' -- $WISP run $UK/fault.elf -- de
vm_expect fault-int3 126 '' 'vector (3|13)\) at rip 0x' -- $WISP run $UK/fault.elf -- bp
vm_expect fault-bad-stack 126 '' '#PF page fault \(vector 14\).*rsp 0xdead0000000' -- $WISP run $UK/fault.elf -- stack
# The reported RIP is the faulting instruction: check it against the symbol table.
if kvm_ok && command -v nm >/dev/null; then
	rip=$($WISP run $UK/fault.elf -- ud 2>&1 | sed -n 's/.*at rip 0x\([0-9a-f]*\).*/\1/p')
	main=$(nm $UK/fault.elf | awk '$3 == "main" {print $1}')
	if [ -n "$rip" ] && [ $((0x$rip)) -gt $((0x$main)) ] && [ $((0x$rip)) -lt $((0x$main + 0x400)) ] &&
		[ "$(objdump -d --start-address=0x$rip --stop-address=$((0x$rip + 2)) $UK/fault.elf | grep -c ud2)" = 1 ]; then
		ok fault-rip-is-exact
	else bad fault-rip-is-exact "rip '$rip' is not the ud2 in main (0x$main)"; fi
else skipped fault-rip-is-exact "no /dev/kvm"; fi

vm_expect halt-cpl0-is-a-crash 126 '^halt: halting' 'guest halted \(HLT\) with nothing to wake it && rip [0-9a-f]{16} +rsp && cr3 0000000000008000' -- $WISP run $UK/halt-cpl0.elf
vm_expect halt-cpl3-is-a-gp 126 '' '#GP general protection' -- $WISP run $UK/halt.elf

# --- hostile guests: an error for the guest, never for the VMM ----------------
vm_expect unclaimed-port-and-mmio 0 '^probe: ok$' '' -- $WISP run $UK/probe.elf
vm_expect hostile-bad-buffers 0 'console results: -14 -14 -22 -14' '' -- $WISP run $UK/hostile.elf -- buffers
vm_expect hostile-bad-argptr 126 '' 'argument at 0xfffffff0 lies outside guest RAM' -- $WISP run $UK/hostile.elf -- argptr
vm_expect hostile-unknown-hypercall 126 '' 'unknown hypercall 10' -- $WISP run $UK/hostile.elf -- unknown
vm_expect hostile-narrow-hypercall 126 '' '1-byte write' -- $WISP run $UK/hostile.elf -- width

# --- stopping a guest ----------------------------------------------------------
vm_expect timeout-spin 124 '^spin: spinning' 'timeout of 300 ms elapsed' -- $WISP run --timeout 300ms $UK/spin.elf
vm_expect timeout-idle 124 '^idle: waiting' 'timeout of 200 ms elapsed' -- $WISP run --timeout 200ms $UK/idle.elf
for sig in INT TERM; do
	if kvm_ok; then
		$WISP run $UK/spin.elf >"$TMP/sig.out" 2>"$TMP/sig.err" &
		pid=$!
		for _ in $(seq 50); do grep -q spinning "$TMP/sig.out" && break; sleep 0.1; done
		kill -$sig $pid
		wait $pid
		code=$?
		want=$((128 + $(kill -l $sig)))
		if [ $code = $want ] && grep -q "stopped by signal $sig" "$TMP/sig.err" &&
			! grep -qE 'Sanitizer|runtime error' "$TMP/sig.err"; then ok "sig$sig-stops-cleanly"
		else bad "sig$sig-stops-cleanly" "exit $code (want $want): $(cat "$TMP/sig.err")"; fi
	else skipped "sig$sig-stops-cleanly" "no /dev/kvm"; fi
done

# --- the CPUID cache (<runtime-dir>/cpuid) --------------------------------------
# Written on the first start, then used; a file that is corrupt, not ours,
# or writable by others is ignored and replaced; WISP_CPUID_CACHE=0 skips it.
if kvm_ok; then
	rt=$TMP/rt
	mkdir -p "$rt"
	cache_run() { env WISP_RUNTIME_DIR="$rt" "$@" $WISP run $UK/hello.elf >/dev/null 2>&1; }
	cache_run && [ -s "$rt/cpuid" ] && ok cpuid-cache-written || bad cpuid-cache-written "no $rt/cpuid"
	size=$(stat -c %s "$rt/cpuid" 2>/dev/null)
	cp "$rt/cpuid" "$TMP/cpuid.good"
	touch -d '2000-01-01' "$rt/cpuid"
	cache_run && [ "$(stat -c %Y "$rt/cpuid")" = "$(date -d 2000-01-01 +%s)" ] && ok cpuid-cache-reused ||
		bad cpuid-cache-reused "the cache was rewritten although valid"
	for bad_kind in truncated garbage foreign-key other-writable; do
		cp "$TMP/cpuid.good" "$rt/cpuid"
		case $bad_kind in
		truncated) truncate -s 100 "$rt/cpuid" ;;
		garbage) head -c "$size" /dev/urandom >"$rt/cpuid" ;;
		foreign-key) printf 'ffffffff' | dd of="$rt/cpuid" bs=1 seek=8 conv=notrunc 2>/dev/null ;;
		other-writable) chmod 0666 "$rt/cpuid" ;;
		esac
		# The key (first 88 bytes) and the size must be back; entries may
		# differ in host APIC-ID fields, which depend on the host CPU
		# the query ran on (Wisp sets those per vCPU anyway).
		if cache_run && cmp -s -n 88 "$rt/cpuid" "$TMP/cpuid.good" &&
			[ "$(stat -c %s "$rt/cpuid")" = "$size" ] && [ "$(stat -c %a "$rt/cpuid")" = 600 ]; then
			ok "cpuid-cache-$bad_kind-replaced"
		else bad "cpuid-cache-$bad_kind-replaced" "cache not replaced by a fresh query"; fi
	done
	rm -f "$rt/cpuid"
	cache_run WISP_CPUID_CACHE=0 && [ ! -e "$rt/cpuid" ] && ok cpuid-cache-off ||
		bad cpuid-cache-off "WISP_CPUID_CACHE=0 still wrote a cache"
else
	skipped cpuid-cache "no /dev/kvm"
fi

# --- the same image on QEMU (PVH entry, COM1, isa-debug-exit) -----------------
# isa-debug-exit turns status S into QEMU exit code 2*S+1.
QEMU="qemu-system-x86_64 -M microvm -nodefaults -no-user-config -nographic -serial stdio -device isa-debug-exit"
if command -v qemu-system-x86_64 >/dev/null; then
	expect qemu-tcg-hello 1 '^Hello from a Wisp unikernel!$' '' -- $QEMU -accel tcg -kernel $UK/hello.elf
	expect qemu-tcg-args-and-status 11 '' '' -- $QEMU -accel tcg -kernel $UK/exit.elf -append 5
	expect qemu-tcg-fault 127 'unikernel fault: vector 6 ' '' -- $QEMU -accel tcg -kernel $UK/fault.elf -append ud
	vm_expect qemu-kvm-hello 1 '^Hello from a Wisp unikernel!$' '' -- $QEMU -accel kvm -kernel $UK/hello.elf
	vm_expect qemu-kvm-status 11 '' '' -- $QEMU -accel kvm -kernel $UK/exit.elf -append 5
else
	bad qemu-present "qemu-system-x86_64 not installed (scripts/deps.sh test installs it)"
fi

# --- bad input from the user: one clear line, exit 125, no KVM needed ---------
head -c 65536 /dev/urandom >"$TMP/random.img"
head -c 40 $UK/hello.elf >"$TMP/truncated.elf"
perl -pe 's/Wisp\0/Wasp\0/g' $UK/hello.elf >"$TMP/nonote.elf"
: >"$TMP/empty.img"
expect err-missing-file 125 '' "image '/nonexistent.elf': No such file or directory" -- $WISP run /nonexistent.elf
expect err-random-bytes 125 '' "random.img': not an ELF file" -- $WISP run "$TMP/random.img"
expect err-truncated-elf 125 '' "truncated ELF header" -- $WISP run "$TMP/truncated.elf"
expect err-empty-file 125 '' "file is empty" -- $WISP run "$TMP/empty.img"
expect err-directory 125 '' "Is a directory" -- $WISP run /tmp
expect err-not-unikernel 125 '' "no Wisp note: not a Wisp unikernel" -- $WISP run "$TMP/nonote.elf"
expect err-pie-elf 125 '' "not an executable ELF" -- $WISP run /bin/true
expect err-no-image 125 '' "no image given" -- $WISP run
expect err-bad-mem 125 '' "--mem 'lots': not a size" -- $WISP run --mem lots $UK/hello.elf
expect err-bad-cpus 125 '' "--cpus 'x'" -- $WISP run --cpus x $UK/hello.elf
expect err-unikernel-smp 125 '' "exactly 1 vCPU" -- $WISP run --cpus 2 $UK/hello.elf
expect err-bad-timeout 125 '' "--timeout '0'" -- $WISP run --timeout 0 $UK/hello.elf
expect err-unknown-option 125 '' "unknown option '--frobnicate'" -- $WISP run --frobnicate $UK/hello.elf
expect err-unknown-verb 125 '' "unknown verb 'fly'" -- $WISP fly
expect err-no-kvm 125 '' "/nonexistent/kvm: No such file or directory" -- env WISP_KVM_DEVICE=/nonexistent/kvm $WISP run $UK/hello.elf
# Image larger than --mem, and segments outside RAM: built by the test.
vm_expect err-image-too-big 125 '' 'needs [0-9]+ KiB of memory but --mem gives 2048 KiB' -- $WISP run --mem 2M "$UK/big.elf"
vm_expect err-cmdline-too-long 125 '' 'command line too long' -- $WISP run $UK/echo.elf -- "$(head -c 5000 /dev/zero | tr '\0' x)"

# --- --config FILE: the same VM as the flags (docs/config.md) ------------------------------
printf '{"image": "%s", "args": ["one", "two words"], "mem": "16M"}\n' "$(realpath $UK/echo.elf)" >"$TMP/echo.json"
vm_expect config-file-runs 0 '^\[two words\]$' '' -- $WISP run --config "$TMP/echo.json"
printf '{"image": "%s", "memory": 16}\n' "$(realpath $UK/echo.elf)" >"$TMP/bad.json"
expect err-config-unknown-field 125 '' "^wisp: --config '$TMP/bad.json': memory: unknown field$" -- $WISP run --config "$TMP/bad.json"
printf '{"image": "%s", "devices": [{"type": "virtio-blk"}]}\n' "$(realpath $UK/echo.elf)" >"$TMP/bad2.json"
expect err-config-device-field 125 '' "devices\[0\].path: required for a virtio-blk device" -- $WISP run --config "$TMP/bad2.json"
expect err-config-missing 125 '' "--config '$TMP/none.json': No such file or directory" -- $WISP run --config "$TMP/none.json"
expect err-config-with-flags 125 '' "run: --config describes the whole VM" -- $WISP run --mem 64M --config "$TMP/echo.json"
printf '{nope' >"$TMP/bad3.json"
expect err-config-not-json 125 '' "--config '$TMP/bad3.json': line 1: not JSON" -- $WISP run --config "$TMP/bad3.json"

summary
