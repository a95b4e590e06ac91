#!/bin/bash
# bench-virtio: what paravirtual I/O buys, measured from unikernels (CPL3)
# on this machine's /dev/kvm, medians of ROUNDS runs (default 5):
#  1. the emulated PCI RNG device vs virtio-rng, in the same unikernel and
#     the same run (rngcmp): random bytes/s and VM exits per KiB, where
#     virtio's exits are its register accesses (user-space exits), its
#     queue notifies (ioeventfd, in-kernel) and the guest's POLL/clock
#     hypercalls while it waited;
#  2. virtio-rng against the request size (a Linux hwrng read is small);
#  3. one I/O thread per VM vs one per device (WISP_IO_THREADS=device),
#     with virtio-rng and virtio-blk busy at once (iomix);
#  4. virtio-blk sequential read of a 64 MiB image (64 KiB requests, one at
#     a time), io_uring and synchronous.
# Writes build/bench/virtio.csv. Usage: bench/virtio.sh [ROUNDS]
cd "$(dirname "$0")/.." || exit 1
bench/where.sh bench-virtio
WISP=${WISP:-build/wisp}
UK=${UK:-build/unikernels}
ROUNDS=${1:-5}
dev=${WISP_KVM_DEVICE:-/dev/kvm}
if ! { [ -c "$dev" ] && { exec 9<>"$dev"; } 2>/dev/null; }; then
	echo "SKIPPED: bench-virtio: no usable $dev"
	exit 0
fi
exec 9>&-
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p build/bench
csv=build/bench/virtio.csv
echo "what,round,value" >"$csv"

run() { # run NAME ARGS...: one wisp run, output in $TMP/out, fails loudly
	if ! "$@" >"$TMP/out" 2>&1; then
		echo "bench-virtio: $1 failed:"; cat "$TMP/out"; exit 1
	fi
}
field() { sed -n "$1" "$TMP/out" | head -1; }

PCI_BYTES=262144 V_BYTES=$((64 << 20))
for r in $(seq "$ROUNDS"); do
	run $WISP run --stats --rng-device --rng "$UK/rngcmp.elf" -- $PCI_BYTES $V_BYTES 65536
	pci=$(field 's/^pci-rng: .* \([0-9]*\) bytes\/s.*/\1/p')
	vrt=$(field 's/^virtio-rng: .* \([0-9]*\) bytes\/s.*/\1/p')
	waits=$(field 's/^virtio-rng: .*wait exits \([0-9]*\).*/\1/p')
	reads=$(field 's/.*rng-device: reads \([0-9]*\).*/\1/p')
	read -r vmmio vnot <<<"$(field 's/.*virtio-rng@[^:]*: mmio exits \([0-9]*\) notifies \([0-9]*\).*/\1 \2/p')"
	[ -n "$pci" ] && [ -n "$vrt" ] && [ -n "$reads" ] && [ -n "$vnot" ] && [ -n "$waits" ] ||
		{ echo "bench-virtio: cannot parse:"; cat "$TMP/out"; exit 1; }
	{
		echo "pci_rng_bytes_per_s,$r,$pci"
		echo "virtio_rng_bytes_per_s,$r,$vrt"
		echo "pci_rng_exits_per_kib,$r,$(echo "scale=3; $reads * 1024 / $PCI_BYTES" | bc)"
		echo "virtio_rng_exits_per_kib,$r,$(echo "scale=5; ($vmmio + $vnot + $waits) * 1024 / $V_BYTES" | bc)"
	} >>"$csv"
done
for chunk in 64 4096 65536 1048576; do
	bytes=$((chunk * 4096 > V_BYTES ? V_BYTES : chunk * 4096))
	for r in $(seq "$ROUNDS"); do
		run $WISP run --stats --rng "$UK/rngcmp.elf" -- 0 $bytes $chunk
		vrt=$(field 's/^virtio-rng: .* \([0-9]*\) bytes\/s.*/\1/p')
		waits=$(field 's/^virtio-rng: .*wait exits \([0-9]*\).*/\1/p')
		read -r vmmio vnot <<<"$(field 's/.*virtio-rng@[^:]*: mmio exits \([0-9]*\) notifies \([0-9]*\).*/\1 \2/p')"
		echo "virtio_rng_chunk_${chunk}_bytes_per_s,$r,$vrt" >>"$csv"
		echo "virtio_rng_chunk_${chunk}_exits_per_kib,$r,$(echo "scale=5; ($vmmio + $vnot + $waits) * 1024 / $bytes" | bc)" >>"$csv"
	done
done
head -c $((1 << 20)) /dev/urandom >"$TMP/mix.img"
for r in $(seq "$ROUNDS"); do
	for mode in shared device; do
		run env WISP_IO_THREADS=$mode $WISP run --rng --disk "$TMP/mix.img" "$UK/iomix.elf" -- 200 262144
		echo "iomix_${mode}_bytes_per_s,$r,$(field 's/^iomix: .* \([0-9]*\) bytes\/s.*/\1/p')" >>"$csv"
	done
done
head -c $((64 << 20)) /dev/urandom >"$TMP/disk.img"
for r in $(seq "$ROUNDS"); do
	for sync in 0 1; do
		run env WISP_BLK_SYNC=$sync $WISP run --disk "$TMP/disk.img,ro" "$UK/disk.elf" -- bench
		echo "blk_read_sync${sync}_bytes_per_s,$r,$(field 's/^bench: .* \([0-9]*\) bytes\/s.*/\1/p')" >>"$csv"
	done
done

python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = {}
for row in csv.DictReader(open(sys.argv[1])):
    rows.setdefault(row["what"], []).append(float(row["value"]))
m = {k: statistics.median(v) for k, v in rows.items()}
def mb(x): return "%.1f MB/s" % (x / 1e6)
print("bench-virtio (medians of %d runs; unikernel at CPL3 on this /dev/kvm)" % len(rows["pci_rng_bytes_per_s"]))
print()
print("| RNG, same unikernel, same run | bytes/s | exits per KiB |")
print("|---|---|---|")
print("| emulated PCI RNG device (4-byte MMIO reads) | %d (%.2f MB/s) | %.1f |" % (m["pci_rng_bytes_per_s"], m["pci_rng_bytes_per_s"] / 1e6, m["pci_rng_exits_per_kib"]))
print("| virtio-rng, 64 KiB requests | %d (%s) | %.4f |" % (m["virtio_rng_bytes_per_s"], mb(m["virtio_rng_bytes_per_s"]), m["virtio_rng_exits_per_kib"]))
print("| **virtio-rng / emulated** | **%.0fx** | **1/%.0f** |" % (m["virtio_rng_bytes_per_s"] / m["pci_rng_bytes_per_s"], m["pci_rng_exits_per_kib"] / m["virtio_rng_exits_per_kib"]))
print()
print("| virtio-rng request size | bytes/s | exits per KiB | x emulated |")
print("|---|---|---|---|")
for c in (64, 4096, 65536, 1048576):
    b = m["virtio_rng_chunk_%d_bytes_per_s" % c]
    print("| %d B | %s | %.4f | %.0fx |" % (c, mb(b), m["virtio_rng_chunk_%d_exits_per_kib" % c], b / m["pci_rng_bytes_per_s"]))
print()
print("| two devices busy at once (rng + blk, 256 KiB each) | bytes/s |")
print("|---|---|")
print("| one I/O thread per VM (default) | %s |" % mb(m["iomix_shared_bytes_per_s"]))
print("| one I/O thread per device | %s |" % mb(m["iomix_device_bytes_per_s"]))
print()
print("| virtio-blk sequential read, 64 MiB, 64 KiB requests | bytes/s |")
print("|---|---|")
print("| io_uring | %s |" % mb(m["blk_read_sync0_bytes_per_s"]))
print("| synchronous | %s |" % mb(m["blk_read_sync1_bytes_per_s"]))
PY
