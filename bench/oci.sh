#!/bin/bash
# make bench-oci: `podman run --rm` of the same image, with runc and with
# wisp-oci, interleaved; medians and ratios (docs/oci.md#benchmark).
# Unikernel image: /noop (Wisp unikernel) under wisp-oci vs /true (a static
# Linux `true`) under runc, both in one image. Linux image (where Linux
# guests run): busybox `true` under runc and under wisp-oci (a Linux VM,
# the image packed from the rootfs at create).
# Env: ROUNDS (default 10). Writes build/bench/oci.csv and oci-split.csv.
cd "$(dirname "$0")/.." || exit 1
B=${BUILD:-build}
ROUNDS=${ROUNDS:-10}
bench/where.sh bench-oci
T=$(mktemp -d)
trap 'podman --root $T/ps --runroot $T/pr --storage-driver vfs rm -af >/dev/null 2>&1; rm -rf "$T"' EXIT
P="podman --root $T/ps --runroot $T/pr --storage-driver vfs --cgroup-manager cgroupfs"
OCI=$(realpath $B/wisp-oci)
mkdir -p "$T/uk/bin" "$T/lin/bin" $B/bench
cp $B/unikernels/noop.elf "$T/uk/noop" && cp $B/bench/true "$T/uk/true"
cp /bin/busybox "$T/lin/bin/" && ln -s busybox "$T/lin/bin/true" && ln -s busybox "$T/lin/bin/sh"
tar cf "$T/uk.tar" -C "$T/uk" . && tar cf "$T/lin.tar" -C "$T/lin" .
$P import "$T/uk.tar" localhost/bench-uk:1 >/dev/null 2>&1
$P import "$T/lin.tar" localhost/bench-lin:1 >/dev/null 2>&1

# ms CMD...: wall milliseconds of CMD (its output dropped); -1 if it failed.
ms() {
	local t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || { echo -1; return; }
	local t1=$EPOCHREALTIME
	echo $(((${t1/./} - ${t0/./}) / 1000))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

run_pair() { # NAME RUNC_ARGS... -- WISP_ARGS...
	local name=$1
	shift
	local r=() w=() seen=0
	for a in "$@"; do
		if [ "$a" = -- ]; then seen=1; elif [ $seen = 0 ]; then r+=("$a"); else w+=("$a"); fi
	done
	: >"$T/runc" && : >"$T/wisp"
	for _ in $(seq "$ROUNDS"); do
		ms $P run --rm --network none --runtime runc "${r[@]}" >>"$T/runc"
		ms $P run --rm --network none --runtime "$OCI" "${w[@]}" >>"$T/wisp"
	done
	if grep -q -- -1 "$T/runc" "$T/wisp"; then
		echo "$name: a run FAILED (runc: $(tr '\n' ' ' <"$T/runc"); wisp-oci: $(tr '\n' ' ' <"$T/wisp"))"
		return 1
	fi
	local mr mw
	mr=$(median <"$T/runc")
	mw=$(median <"$T/wisp")
	printf '%-18s runc %6d ms   wisp-oci %6d ms   ratio %.2f\n' "$name" "$mr" "$mw" "$(echo "$mw $mr" | awk '{print $1/$2}')"
	echo "$name,$mr,$mw" >>$B/bench/oci.csv
}

# The split toolstack through the bare runtime: `create` builds the VM (or
# the container), `start` only lets it go. Times create, and start until
# the first line of output (for Wisp: the guest's first words, so it
# bounds start → first guest instruction).
split() { # RUNTIME BUNDLE: prints "create_ms start_to_output_ms"
	local rt=$1 b=$2 id=split$RANDOM out=$T/split.out t0 t1 t2
	: >"$out"
	t0=$EPOCHREALTIME
	$rt --root "$T/rt-root" create --bundle "$b" "$id" >"$out" 2>&1 </dev/null || { echo "-1 -1"; return; }
	t1=$EPOCHREALTIME
	$rt --root "$T/rt-root" start "$id" >/dev/null 2>&1 || { echo "-1 -1"; return; }
	for _ in $(seq 20000); do [ -s "$out" ] && break; sleep 0.001; done
	t2=$EPOCHREALTIME
	$rt --root "$T/rt-root" delete --force "$id" >/dev/null 2>&1
	echo "$(((${t1/./} - ${t0/./}) / 1000)) $(((${t2/./} - ${t1/./}) / 1000))"
}
mkbundle() { # DIR ARGS_JSON: a bundle whose rootfs is $T/uk
	mkdir -p "$1" && (cd "$1" && runc spec) && python3 - "$1" "$2" "$T/uk" <<'PY'
import json, sys
p = sys.argv[1] + "/config.json"
c = json.load(open(p))
c["process"]["args"] = json.loads(sys.argv[2])
c["process"]["terminal"] = False
c["root"] = {"path": sys.argv[3], "readonly": True}
json.dump(c, open(p, "w"))
PY
}
cp $B/unikernels/hello.elf "$T/uk/hello" && cp /bin/busybox "$T/uk/busybox"
mkdir -p "$T/rt-root" && chmod 0700 "$T/rt-root"
mkbundle "$T/b-wisp" '["/hello"]' && mkbundle "$T/b-runc" '["/busybox","echo","hi"]'
: >"$T/split-runc" && : >"$T/split-wisp"
for _ in $(seq "$ROUNDS"); do
	split runc "$T/b-runc" >>"$T/split-runc"
	split "$OCI" "$T/b-wisp" >>"$T/split-wisp"
done
echo "create, then start until the first output; median of $ROUNDS"
echo "runtime,create_ms,start_to_output_ms" >$B/bench/oci-split.csv
for rt in runc wisp; do
	c=$(awk '{print $1}' "$T/split-$rt" | median)
	s=$(awk '{print $2}' "$T/split-$rt" | median)
	printf '%-8s create %6d ms   start -> first output %6d ms\n' "$rt" "$c" "$s"
	echo "$rt,$c,$s" >>$B/bench/oci-split.csv
done

echo "image,runc_ms,wisp_oci_ms" >$B/bench/oci.csv
echo "podman run --rm, median of $ROUNDS, interleaved"
rc=0
run_pair unikernel localhost/bench-uk:1 /true -- localhost/bench-uk:1 /noop || rc=1
if $B/wisp check -q 2>/dev/null; then
	run_pair linux localhost/bench-lin:1 true -- localhost/bench-lin:1 true || rc=1
else
	echo "linux: SKIPPED: this KVM cannot run Linux guests (wisp check); make bench-oci LAB=yes"
fi
exit $rc
