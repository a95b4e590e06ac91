#!/bin/sh
# The course's lab, end to end, inside a Linux guest booted by Wisp: load the
# driver, find the device, seed it, read numbers through the app and through
# /dev/hwrng, measure, unload. Every line is prefixed "demo: " so the host can
# show the transcript (make demo-rng).
# Usage: rng-demo.sh KO
KO=$1
say() { echo "demo: $*"; }
run() { # run CMD...: show the command and its output
	say "# $*"
	"$@" 2>&1 | sed 's/^/demo: /'
}
for d in /sys/bus/pci/devices/*; do
	say "pci $(basename $d) $(cat $d/vendor):$(cat $d/device) class $(cat $d/class)"
done
run insmod "$KO"
dmesg | grep wisp-rng | sed 's/^/demo: [dmesg] /'
run ls -l /dev/wisp-rng /dev/hwrng
run rng seed 42
run rng get 5
run rng bench 1
say "# head -c 16 /dev/hwrng | od -An -tx4"
head -c 16 /dev/hwrng | od -An -tx4 | sed 's/^/demo: /'
run rmmod wisp_rng
say "done"
