# The lab's L1, host side: sourced by in-lab.sh (host-root mode) and run.sh
# (the Linux-guest lab). One place for the slot lock, the QEMU command line
# and the console's clean-up, so the two cannot drift apart.

# l1_slot NAME: take one of LAB_SLOTS (default 2) per-host lab slots, waiting
# for one if all are busy (each TCG L1 takes a core; more starve each
# other). The lock is an fd held until this shell and its QEMU exit.
# Starts the clock of l1_stamp (set here: l1_boot runs in a pipeline's
# subshell).
l1_slot() {
	local slots=${LAB_SLOTS:-2} dir=${LAB_SLOT_DIR:-/tmp/wisp-lab-slots-$(id -u)} i waited=0
	mkdir -p "$dir" || return 1
	while :; do
		for ((i = 0; i < slots; i++)); do
			exec {L1_SLOT_FD}>"$dir/$i" || return 1
			if flock -n "$L1_SLOT_FD"; then
				L1_START=$EPOCHREALTIME
				return 0
			fi
			exec {L1_SLOT_FD}>&-
		done
		[ $waited = 0 ] && echo "lab: $1: all $slots lab slots busy, waiting" >&2
		waited=1
		sleep 2
	done
}

# l1_stamp: seconds since l1_slot got its slot, from bash's microsecond clock.
l1_stamp() {
	local now=${EPOCHREALTIME/./} s=${L1_START/./}
	local d=$(((now - s) / 10000))
	printf '%d.%02d' $((d / 100)) $((d % 100))
}

# l1_boot TIMEOUT MEM APPEND [QEMU ARG...]: boot L1 (Debian's kernel and
# the initramfs from mkl1.sh, in L1_KERNEL and L1_INITRD) under QEMU TCG
# with -cpu max (AMD SVM + NPT), one serial console on stdout, cleaned of
# escape sequences and carriage returns. Extra arguments add the shares.
l1_boot() {
	local limit=$1 mem=$2 append=$3
	shift 3
	timeout -k 10 "$limit" qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp "${LAB_SMP:-1}" \
		-nographic -nodefaults -no-user-config -serial stdio -no-reboot \
		-kernel "$L1_KERNEL" -initrd "$L1_INITRD" "$@" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 $append" </dev/null 2>&1 |
		sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g; s/\r$//'
}
