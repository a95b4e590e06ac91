# Bad kernels, initrds and sizes: one clear line, exit 125, no guest run.
head -c 65536 /dev/urandom >/tmp/random.img
head -c 1000 $BZ >/tmp/short.img
# A bzImage whose header claims boot protocol 2.01 (bytes 0x206-0x207).
cp $BZ /tmp/old.img
printf '\001\002' | dd of=/tmp/old.img bs=1 seek=518 conv=notrunc 2>/dev/null
expect err-random-kernel 125 "not a Linux kernel: neither an ELF vmlinux nor a bzImage" -- $W run --kernel /tmp/random.img
expect err-truncated-kernel 125 "bzImage truncated" -- $W run --kernel /tmp/short.img
expect err-old-protocol 125 "boot protocol 2.01 is too old" -- $W run --kernel /tmp/old.img
expect err-missing-kernel 125 "kernel '/nonexistent': No such file" -- $W run --kernel /nonexistent
expect err-small-mem 125 "kernel needs [0-9]+ MiB" -- $W run --mem 16M --kernel $BZ
head -c $((40 << 20)) /dev/zero >/tmp/big.initrd
expect err-initrd-too-big 125 "initrd of 40960 KiB does not fit" -- $W run --mem 64M --kernel $BZ --initrd /tmp/big.initrd
rm -f /tmp/big.initrd /tmp/old.img
