#!/bin/bash
# What an operator installs: the man pages agree with `--help` (every option
# each lists, both ways, verb by verb), bash completion completes verbs,
# options, VM names and files (driven through `complete` in a bash
# subshell), `make install` puts everything in place under a scratch
# prefix and `make uninstall` removes it all, and the installed wisp runs
# (wisp check, wisp run hello.elf and a unikernel built against the
# installed runtime, with `vm`: the suite `packaging` of tests/suites.sh
# runs it on a KVM).
# Usage: test_packaging.sh [docs|install|vm]   (default: docs and install)
cd "$(dirname "$0")/../.." || exit 1
SUITE=packaging
. tests/integration/lib.sh
B=${BUILD:-build}
what=${1:-all}

# --- man pages against --help -----------------------------------------------
# The long options in a text; for a man source, only its section SECTION.
opts_of() { grep -oE -- '--[a-z][a-z-]*' | grep -vx -- '--help' | sort -u; }
man_section() { # man_section FILE 'wisp run' -> the text of "## wisp run" (or of a heading naming it)
	awk -v v="$2" '
		/^## / { on = 0; n = split(substr($0, 4), h, ", "); for (i = 1; i <= n; i++) if (h[i] == v) on = 1; next }
		/^# / { on = 0 }
		on' "$1"
}
compare() { # compare NAME WANT_FILE GOT_FILE
	if [ ! -s "$2" ] && [ ! -s "$3" ]; then ok "$1"; return; fi
	if diff -q "$2" "$3" >/dev/null; then
		ok "$1"
	else
		bad "$1" "--help only: $(comm -23 "$2" "$3" | tr '\n' ' ')man only: $(comm -13 "$2" "$3" | tr '\n' ' ')"
	fi
}
if [ "$what" != install ]; then
	verbs=$($B/wisp-client help | awk '/^  [a-z]/ { print $1 }')
	[ -n "$verbs" ] || bad man-verbs "wisp help lists no verb"
	for v in $verbs; do
		[ "$v" = help ] || [ "$v" = version ] && continue
		man_section docs/man/wisp.1.scd "wisp $v" >"$TMP/man.$v"
		if [ ! -s "$TMP/man.$v" ]; then
			bad "man-has-$v" "docs/man/wisp.1.scd has no section '## wisp $v'"
			continue
		fi
		$B/wisp-client "$v" --help 2>&1 | opts_of >"$TMP/help.$v.opts"
		opts_of <"$TMP/man.$v" >"$TMP/man.$v.opts"
		compare "man-matches-help-$v" "$TMP/help.$v.opts" "$TMP/man.$v.opts"
	done
	$B/wispd --help 2>&1 | opts_of >"$TMP/help.wispd.opts"
	awk '/^# OPTIONS/ { on = 1; next } /^# / { on = 0 } on' docs/man/wispd.8.scd | opts_of >"$TMP/man.wispd.opts"
	compare man-matches-help-wispd "$TMP/help.wispd.opts" "$TMP/man.wispd.opts"
	$B/wisp-oci --help 2>&1 | opts_of >"$TMP/help.oci.opts"
	awk '/^# (GLOBAL OPTIONS|COMMANDS)/ { on = 1; next } /^# / { on = 0 } on' docs/man/wisp-oci.1.scd | opts_of >"$TMP/man.oci.opts"
	compare man-matches-help-wisp-oci "$TMP/help.oci.opts" "$TMP/man.oci.opts"
	for m in docs/man/*.scd; do
		if out=$(scdoc <"$m" 2>&1 >/dev/null) && [ -z "$out" ]; then ok "man-renders-$(basename "$m" .scd)"
		else bad "man-renders-$(basename "$m" .scd)" "$out"; fi
	done

	# --- wisp-vm.json(5) against the configuration parser ----------------------------
	# The page's field names (# FIELDS; # LIMITS; # DEVICES: each ## TYPE and
	# its options) must be those src/vmm/config.c accepts, both ways; and wisp
	# must take each one the page names (a bad value, never "unknown field").
	VMJ=docs/man/wisp-vm.json.5.scd
	section() { awk -v s="$1" '/^# / { on = ($0 == "# " s); next } on' "$VMJ"; }
	section FIELDS | grep -oE '^\*[a-z_]+\*$' | tr -d '*' | sort -u >"$TMP/vmj.man.top"
	awk '/^int vm_config_from_jobj\(/ { on = 1 } on && /^}/ { on = 0 } on' src/vmm/config.c |
		grep -oE 'strcmp\(key, "[a-z_]+"\)' | cut -d'"' -f2 | sort -u >"$TMP/vmj.src.top"
	compare_fields() { # compare_fields NAME SRC_FILE MAN_FILE
		if [ -s "$2" ] && diff -q "$2" "$3" >/dev/null; then ok "$1"
		else bad "$1" "config.c only: $(comm -23 "$2" "$3" | tr '\n' ' ')man page only: $(comm -13 "$2" "$3" | tr '\n' ' ')"; fi
	}
	compare_fields vm-json-man-fields "$TMP/vmj.src.top" "$TMP/vmj.man.top"
	section LIMITS | grep -oE '^\*[a-z_]+\*$' | tr -d '*' | sort -u >"$TMP/vmj.man.lim"
	awk '/^static int parse_limits\(/ { on = 1 } on && /^}/ { on = 0 } on' src/vmm/config.c |
		grep -oE 'strcmp\(key, "[a-z_]+"\)' | cut -d'"' -f2 | sort -u >"$TMP/vmj.src.lim"
	compare_fields vm-json-man-limits "$TMP/vmj.src.lim" "$TMP/vmj.man.lim"
	section DEVICES | awk '/^## / { t = $2; print t; next } /^\*[a-z_]+\*$/ { gsub(/\*/, ""); print t "." $0 }' |
		sort -u >"$TMP/vmj.man.dev"
	{
		awk '/^static const struct vm_dev_type types\[/ { on = 1 } on && /^};/ { on = 0 } on' src/vmm/config.c |
			grep -oE '\] = \{"[a-z-]+"' | cut -d'"' -f2
		kinds=$(awk '/^static const struct vm_dev_type types\[/ { on = 1 } on && /^};/ { on = 0 } on' src/vmm/config.c |
			grep -oE '\[VM_DEV_[A-Z_]+\] = \{"[a-z-]+"' | sed -E 's/\[(VM_DEV_[A-Z_]+)\] = \{"([a-z-]+)"/\1=\2/')
		awk '/^static int parse_device\(/ { on = 1 } on && /^}/ { on = 0 } on' src/vmm/config.c |
			grep -oE '\{"[a-z_]+", "[a-z]+", VM_DEV_[A-Z_]+' | while IFS='"' read -r _ json _ _ kind; do
			kind=${kind#, }
			for k in $kinds; do [ "${k%%=*}" = "$kind" ] && echo "${k#*=}.$json"; done
		done
	} | sort -u >"$TMP/vmj.src.dev"
	compare_fields vm-json-man-devices "$TMP/vmj.src.dev" "$TMP/vmj.man.dev"
	unknown=""
	while read -r f; do
		printf '{"image": "/nonexistent/x.elf", "%s": [[]]}\n' "$f" >"$TMP/vmj.json"
		$B/wisp run --config "$TMP/vmj.json" 2>&1 | grep -q "$f: unknown field" && unknown="$unknown $f"
	done <"$TMP/vmj.man.top"
	while read -r f; do
		case $f in *.*) ;; *) continue ;; esac
		printf '{"image": "/nonexistent/x.elf", "devices": [{"type": "%s", "%s": [[]]}]}\n' "${f%%.*}" "${f#*.}" >"$TMP/vmj.json"
		$B/wisp run --config "$TMP/vmj.json" 2>&1 | grep -q "unknown field\|is not known" && unknown="$unknown $f"
	done <"$TMP/vmj.man.dev"
	printf '{"image": "/nonexistent/x.elf", "frobnicate": 1}\n' >"$TMP/vmj.json"
	if [ -z "$unknown" ] && $B/wisp run --config "$TMP/vmj.json" 2>&1 | grep -q 'frobnicate: unknown field'; then
		ok vm-json-man-fields-accepted
	else
		bad vm-json-man-fields-accepted "wisp run --config refuses as unknown:$unknown (or takes any field)"
	fi

	# --- socket activation (wispd.socket) ---------------------------------------
	# systemd-socket-activate plays systemd: it holds the socket and starts
	# wispd on the first connection, which must answer on that very socket.
	if command -v systemd-socket-activate >/dev/null; then
		SA=$TMP/sa
		mkdir -m 700 "$SA"
		timeout 30 systemd-socket-activate -l "$SA/api.sock" $B/wispd --foreground \
			--runtime-dir "$SA" --pool none >"$SA/log" 2>&1 &
		sa=$!
		for _ in $(seq 50); do [ -S "$SA/api.sock" ] && break; sleep 0.1; done
		expect socket-activation-answers 0 '^NAME +ID +STATE' '' -- env WISP_SOCKET="$SA/api.sock" $B/wisp-client list
		if grep -q "listening on $SA/api.sock" "$SA/log"; then ok socket-activation-takes-fd
		else bad socket-activation-takes-fd "$(head -c 300 "$SA/log")"; fi
		pkill -f -- "--runtime-dir $SA " 2>/dev/null
		kill $sa 2>/dev/null
		wait $sa 2>/dev/null
	else
		bad socket-activation "systemd-socket-activate missing (Debian package systemd)"
	fi

	# --- wispd.conf: settings from a file, the command line winning --------------
	C=$TMP/conf
	mkdir -m 700 "$C" "$C/run"
	printf '# a comment\n\nsocket = %s/from-file.sock   # trailing comment\npool none\nconsole-size = 128K\n' "$C" >"$C/ok.conf"
	$B/wispd --config "$C/ok.conf" --runtime-dir "$C/run" >"$C/log" 2>&1
	if [ -S "$C/from-file.sock" ]; then ok config-file-settings-apply; else bad config-file-settings-apply "$(cat "$C/log")"; fi
	expect config-file-daemon-answers 0 '^NAME' '' -- env WISP_SOCKET="$C/from-file.sock" $B/wisp-client list
	[ -f "$C/run/wispd.lock" ] && kill "$(head -1 "$C/run/wispd.lock")" 2>/dev/null
	for _ in $(seq 50); do [ -S "$C/from-file.sock" ] || break; sleep 0.1; done
	$B/wispd --config "$C/ok.conf" --socket "$C/cli.sock" --runtime-dir "$C/run" >"$C/log" 2>&1
	if [ -S "$C/cli.sock" ] && [ ! -S "$C/from-file.sock" ]; then ok config-file-command-line-wins
	else bad config-file-command-line-wins "$(ls "$C") $(cat "$C/log")"; fi
	[ -f "$C/run/wispd.lock" ] && kill "$(head -1 "$C/run/wispd.lock")" 2>/dev/null
	printf 'pool = none\npools = 32M=1\n' >"$C/bad.conf"
	expect config-file-unknown-key 125 '' "wispd: $C/bad.conf:2: unknown setting 'pools' \\(known: " -- $B/wispd --config "$C/bad.conf"
	printf 'socket =\n' >"$C/novalue.conf"
	expect config-file-no-value 125 '' "wispd: $C/novalue.conf:1: socket: no value" -- $B/wispd --config "$C/novalue.conf"
	printf 'console-size = lots\n' >"$C/badvalue.conf"
	expect config-file-bad-value 125 '' "console-size 'lots'" -- $B/wispd --config "$C/badvalue.conf"
	expect config-file-missing 125 '' "wispd: --config '$C/none.conf': No such file or directory" -- $B/wispd --config "$C/none.conf"
	mkfifo "$C/fifo"
	expect config-file-fifo-refused 125 '' "wispd: --config '$C/fifo': not a regular file" -- $B/wispd --config "$C/fifo"
	expect config-file-shipped-parses 0 '^usage: wispd' '' -- $B/wispd --config contrib/wispd.conf --help

	# --- bash completion, driven through `complete` ------------------------------
	# complete_words 'wisp cre' -> what the completion function offers.
	complete_words() {
		bash --norc --noprofile -c '
			. contrib/wisp.bash-completion
			read -r -a COMP_WORDS <<<"$1"
			[ "${1: -1}" = " " ] && COMP_WORDS+=("")
			COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
			COMP_LINE=$1
			_wisp
			printf "%s\n" "${COMPREPLY[@]}"' _ "$1"
	}
	# The VM names come from `wisp list`; a stand-in lists two.
	mkdir -p "$TMP/fakebin"
	printf '#!/bin/sh\n[ "$1" = list ] && { echo "NAME ID STATE"; echo "web1 0123abcd running"; echo "db 4567ef01 running"; exit 0; }\nexec %s "$@"\n' \
		"$PWD/$B/wisp" >"$TMP/fakebin/wisp"
	chmod +x "$TMP/fakebin/wisp"
	check_completion() { # NAME LINE EXPECTED_WORD [PATH_PREFIX]
		local got
		got=$(PATH=${4:+$4:}$PWD/$B:$PATH complete_words "$2")
		if printf '%s\n' "$got" | grep -qx -- "$3"; then ok "$1"
		else bad "$1" "'$2' offered: $(echo $got | head -c 200)"; fi
	}
	check_completion completion-verb 'wisp cre' create
	check_completion completion-verb-check 'wisp ch' check
	check_completion completion-run-option 'wisp run --vs' --vsock
	check_completion completion-create-option 'wisp create --na' --name
	check_completion completion-vm-name 'wisp console we' web1 "$TMP/fakebin"
	check_completion completion-vm-id 'wisp destroy 4567' 4567ef01 "$TMP/fakebin"
	check_completion completion-image-file "wisp run $UK/hel" "$UK/hello.elf"
	check_completion completion-disk-file 'wisp run --disk README' README.md
	got=$(PATH=$PWD/$B:$PATH complete_words 'wisp run --mem ')
	if [ -z "$got" ]; then ok completion-value-left-to-user; else bad completion-value-left-to-user "offered: $got"; fi
fi

# --- make install / uninstall into a scratch prefix ------------------------------
if [ "$what" != docs ]; then
	R=$TMP/root
	if make -s install DESTDIR="$R" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system >"$TMP/install.log" 2>&1; then
		ok install-runs
	else
		bad install-runs "$(tail -5 "$TMP/install.log")"
	fi
	for f in usr/bin/wisp usr/sbin/wispd usr/libexec/wisp/wisp-vmm usr/libexec/wisp/wisp-client \
		usr/bin/wisp-oci usr/libexec/wisp/wisp-oci usr/libexec/wisp/tinit usr/share/man/man1/wisp-oci.1 \
		usr/include/wisp/wrt.h usr/include/wisp/abi.h usr/lib/wisp/unikernel/unikernel.ld \
		usr/lib/wisp/unikernel/wrt.o usr/share/man/man1/wisp.1 usr/share/man/man8/wispd.8 \
		usr/share/man/man5/wisp-vm.json.5 usr/share/man/man5/wispd.conf.5 \
		usr/share/bash-completion/completions/wisp lib/systemd/system/wispd.service \
		lib/systemd/system/wispd.socket usr/lib/tmpfiles.d/wisp.conf \
		usr/lib/wisp/unikernels/hello.elf; do
		[ -e "$R/$f" ] || { bad install-has-files "missing /$f"; break; }
	done
	[ -e "$R/usr/lib/wisp/unikernels/hello.elf" ] && ok install-has-files
	if grep -q '^ExecStart=/usr/sbin/wispd --config /etc/wisp/wispd.conf ' "$R/lib/systemd/system/wispd.service"; then ok install-unit-paths
	else bad install-unit-paths "$(grep ExecStart "$R/lib/systemd/system/wispd.service")"; fi
	expect installed-version 0 '^wisp ' '' -- "$R/usr/bin/wisp" version
	# Through the bin/ symlink, wisp finds wisp-client next to its real self.
	expect installed-client-verb 125 '' 'cannot reach wispd' -- env WISP_SOCKET=$TMP/none.sock "$R/usr/bin/wisp" list
	expect installed-wispd-help 0 '^usage: wispd' '' -- "$R/usr/sbin/wispd" --help
	# wisp-oci through its bin/ link (the vm part runs a bundle with it).
	expect installed-oci-version 0 '^spec: 1\.' '' -- "$R/usr/bin/wisp-oci" --version
	# The test-only hooks (-DWISP_TEST_HOOKS, the asan build) are not in
	# what is installed: no binary knows the hook's variable.
	if grep -lq WISP_TEST_SECCOMP_VIOLATE "$R/usr/bin/wisp" "$R/usr/sbin/wispd" "$R/usr/libexec/wisp/wisp-vmm" "$R/usr/libexec/wisp/wisp-client" 2>/dev/null; then
		bad installed-no-test-hooks "$(grep -l WISP_TEST_SECCOMP_VIOLATE "$R"/usr/bin/wisp "$R"/usr/sbin/wispd "$R"/usr/libexec/wisp/*)"
	else
		ok installed-no-test-hooks
	fi
	# A unikernel built out of the tree from the installed runtime alone.
	cat >"$TMP/app.c" <<'C'
#include <wrt.h>
int main(int argc, char **argv) { (void)argc; (void)argv; rt_puts("built against the installed runtime"); return 3; }
C
	if gcc -std=gnu11 -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone -fno-stack-protector \
		-DWRT_APP_NAME='"app"' -I"$R/usr/include/wisp" -I"$R/usr/include" -c "$TMP/app.c" -o "$TMP/app.o" 2>"$TMP/cc.log" &&
		gcc -nostdlib -static -no-pie -Wl,-T,"$R/usr/lib/wisp/unikernel/unikernel.ld" \
			-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -o "$TMP/app.elf" "$TMP/app.o" \
			"$R/usr/lib/wisp/unikernel/wrt.o" "$R/usr/lib/wisp/unikernel/note.o" \
			"$R/usr/lib/wisp/unikernel/libwrt-virtio.a" 2>>"$TMP/cc.log"; then
		ok installed-runtime-builds-app
	else
		bad installed-runtime-builds-app "$(head -c 300 "$TMP/cc.log")"
	fi
	if [ "$what" = vm ]; then # on a KVM (the `packaging` suite)
		expect installed-check 0 'this host can run Wisp VMs' '' -- "$R/usr/bin/wisp" check
		vm_expect installed-run-hello 0 '^Hello from a Wisp unikernel!$' '' -- "$R/usr/bin/wisp" run "$R/usr/lib/wisp/unikernels/hello.elf"
		vm_expect installed-runtime-app-runs 3 '^built against the installed runtime$' '' -- "$R/usr/bin/wisp" run "$TMP/app.elf"
		# The installed wisp-oci runs a bundle through the installed wisp.
		OB=$TMP/ocib
		mkdir -p "$OB/rootfs"
		cp "$R/usr/lib/wisp/unikernels/hello.elf" "$OB/rootfs/hello"
		printf '{"ociVersion":"1.0.2","process":{"args":["/hello"],"cwd":"/"},"root":{"path":"rootfs"}}\n' >"$OB/config.json"
		oi() { "$R/usr/bin/wisp-oci" --root "$TMP/ocir" "$@"; }
		if oi create --bundle "$OB" c1 >"$TMP/oci.out" 2>&1 && oi start c1 2>>"$TMP/oci.out"; then
			for _ in $(seq 200); do oi state c1 2>/dev/null | grep -q '"stopped"' && break; sleep 0.05; done
		fi
		if grep -q '^Hello from a Wisp unikernel!$' "$TMP/oci.out" && oi state c1 | grep -q '"stopped"'; then
			ok installed-oci-runs-bundle
		else
			bad installed-oci-runs-bundle "$(head -c 300 "$TMP/oci.out") $(oi state c1 2>&1 | head -c 200)"
		fi
		oi delete --force c1 2>/dev/null
	fi
	# The Debian package (make deb, the `package` stage), unpacked into a
	# scratch root: its wisp runs from there too.
	deb=$(ls $B/deb/wisp_*.deb 2>/dev/null | head -1)
	if [ "$what" = vm ] && [ -n "$deb" ]; then
		P=$TMP/pkgroot
		if dpkg-deb -x "$deb" "$P" 2>"$TMP/deb.err"; then ok deb-unpacks; else bad deb-unpacks "$(cat "$TMP/deb.err")"; fi
		expect deb-wisp-check 0 'this host can run Wisp VMs' '' -- "$P/usr/bin/wisp" check
		vm_expect deb-wisp-run-hello 0 '^Hello from a Wisp unikernel!$' '' -- "$P/usr/bin/wisp" run "$P/usr/lib/wisp/unikernels/hello.elf"
		rm -rf "$P"
		if [ -e "$P" ]; then bad deb-root-removed "$P remains"; else ok deb-root-removed; fi
	elif [ "$what" = vm ]; then
		bad deb-unpacks "no $B/deb/wisp_*.deb (make deb)"
	fi
	make -s uninstall DESTDIR="$R" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system >/dev/null 2>&1
	left=$(find "$R" -type f -o -type l | sed "s|^$R||")
	if [ -z "$left" ]; then ok uninstall-removes-all; else bad uninstall-removes-all "left: $(echo $left | head -c 300)"; fi
fi
summary
