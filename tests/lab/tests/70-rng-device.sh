# Wisp's RNG device (docs/rng-device.md) under Linux: the wisp_rng driver,
# built against the guest kernel, finds it on Wisp's PCI bus, and
# rng-guest.sh checks /dev/wisp-rng, /dev/hwrng and seeding against the
# reference numbers. Inputs staged by tests/lab/stage/rng.sh.
if [ ! -f /lab/initrd-rng ]; then
	skipped rng-device-linux "no /lab/initrd-rng staged"
	exit 0
fi
l2 rng-device-linux 0 'rng-guest: [0-9]+ passed, 0 failed' -- $W run --rng-device --kernel $BZ --initrd /lab/initrd-rng --cmdline "$CMDLINE wisp_run=\"sh /rng-guest.sh wisp /wisp_rng.ko\""
# The guest's own checks, one line each, so a failure names itself.
grep -E '^(PASS|FAIL): ' $OUT | sed 's/^\(PASS\|FAIL\): /\1: rng-guest-/'
