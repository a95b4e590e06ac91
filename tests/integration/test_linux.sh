#!/bin/bash
# `wisp run --kernel` on the host: every bad kernel, initrd and option is
# refused with one clear line and exit 125 before any guest runs, so these
# need no KVM. (Linux guests themselves boot only in the KVM lab:
# tests/lab, `make lab-test`.) A real bzImage for the header checks comes
# from build/guest-kernel or Debian's /boot; without one those are SKIPPED.
cd "$(dirname "$0")/../.." || exit 1
SUITE=linux
. tests/integration/lib.sh

bz=""
for f in build/guest-kernel/bzImage /boot/vmlinuz-*; do
	[ -r "$f" ] && { bz=$f; break; }
done

head -c 65536 /dev/urandom >"$TMP/random.img"
printf 'MZ' >"$TMP/tiny.img"
: >"$TMP/empty.img"
expect linux-err-random 125 '' "kernel '$TMP/random.img': not a Linux kernel: neither an ELF vmlinux nor a bzImage" -- $WISP run --kernel "$TMP/random.img"
expect linux-err-tiny 125 '' "not a Linux kernel" -- $WISP run --kernel "$TMP/tiny.img"
expect linux-err-empty 125 '' "kernel '$TMP/empty.img': file is empty" -- $WISP run --kernel "$TMP/empty.img"
expect linux-err-missing 125 '' "kernel '/nonexistent/bzImage': No such file or directory" -- $WISP run --kernel /nonexistent/bzImage
expect linux-err-directory 125 '' "Is a directory" -- $WISP run --kernel /tmp
expect linux-err-pie-elf 125 '' "not an executable ELF" -- $WISP run --kernel /bin/true
if [ -e "$UK/hello.elf" ]; then
	expect linux-err-unikernel 125 '' "a Wisp unikernel, not Linux" -- $WISP run --kernel "$UK/hello.elf"
	perl -pe 's/Wisp\0/Wasp\0/g' "$UK/hello.elf" >"$TMP/nonote.elf"
	# The unikernel runtime carries a PVH note too; without the Wisp note
	# it is a PVH ELF like any other, so strip that note as well.
	perl -pe 's/Xen\0/Xyz\0/g' "$TMP/nonote.elf" >"$TMP/nopvh.elf"
	expect linux-err-no-pvh-note 125 '' "ELF has no PVH entry note" -- $WISP run --kernel "$TMP/nopvh.elf"
else
	skipped linux-err-unikernel "no unikernels built"
fi
expect linux-err-initrd-alone 125 '' "run: --initrd needs --kernel" -- $WISP run --initrd x
expect linux-err-cmdline-alone 125 '' "run: --cmdline needs --kernel" -- $WISP run --cmdline x
expect linux-err-image-and-kernel 125 '' "give either IMAGE or --kernel, not both" -- $WISP run --kernel x y

if [ -n "$bz" ]; then
	# Boot protocol 2.01 in the header (version at 0x206).
	cp "$bz" "$TMP/old.img"
	printf '\001\002' | dd of="$TMP/old.img" bs=1 seek=518 conv=notrunc 2>/dev/null
	expect linux-err-old-protocol 125 '' "boot protocol 2.01 is too old: Wisp needs 2.12" -- $WISP run --kernel "$TMP/old.img"
	# No 64-bit entry point (xloadflags at 0x236).
	cp "$bz" "$TMP/k32.img"
	printf '\000\000' | dd of="$TMP/k32.img" bs=1 seek=566 conv=notrunc 2>/dev/null
	expect linux-err-no-64bit 125 '' "no 64-bit entry point" -- $WISP run --kernel "$TMP/k32.img"
	head -c 4000 "$bz" >"$TMP/cut.img"
	expect linux-err-truncated 125 '' "bzImage truncated" -- $WISP run --kernel "$TMP/cut.img"
	expect linux-err-small-mem 125 '' "kernel needs [0-9]+ MiB of memory to unpack and run but --mem gives 8 MiB" -- $WISP run --mem 8M --kernel "$bz"
	head -c $((100 << 20)) /dev/zero >"$TMP/big.initrd"
	expect linux-err-initrd-too-big 125 '' "initrd of 102400 KiB does not fit in memory" -- $WISP run --mem 96M --kernel "$bz" --initrd "$TMP/big.initrd"
	expect linux-err-initrd-missing 125 '' "initrd '/nonexistent': No such file" -- $WISP run --kernel "$bz" --initrd /nonexistent
	expect linux-err-cmdline-too-long 125 '' "command line too long \(5000 bytes" -- $WISP run --kernel "$bz" --cmdline "$(head -c 5000 /dev/zero | tr '\0' x)"
	expect linux-err-too-many-cpus 125 '' "--cpus '65': must be a number from 1 to 64" -- $WISP run --kernel "$bz" --cpus 65
else
	for t in old-protocol no-64bit truncated small-mem initrd-too-big initrd-missing cmdline-too-long; do
		skipped "linux-err-$t" "no bzImage (build/guest-kernel or /boot)"
	done
fi
summary
