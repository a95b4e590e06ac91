# make demo-rng's Linux half (tests/lab/rng-demo.sh): the transcript is
# shown on the host, and checked here: seed 42 must give the predicted
# numbers through the app. Inputs staged by tests/lab/stage/rng.sh.
if [ ! -f /lab/initrd-rng ]; then
	skipped rng-demo "no /lab/initrd-rng staged"
	exit 0
fi
want=$(head -5 /lab/rng-expected-42 | tr '\n' ' ' | sed 's/ $//')
l2 rng-demo 0 '^demo: done' -- $W run --rng-device --kernel $BZ --initrd /lab/initrd-rng --cmdline "$CMDLINE wisp_run=\"sh /rng-demo.sh /wisp_rng.ko\""
grep '^demo: ' $OUT
got=$(sed -n '/^demo: # rng get 5/,/^demo: # /p' $OUT | grep -E '^demo: [0-9]+$' | sed 's/^demo: //' | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] && ok rng-demo-seed-42-numbers || bad rng-demo-seed-42-numbers "got '$got', want '$want'"
