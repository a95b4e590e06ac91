# A Linux guest (2 vCPUs) survives save and restore with its shell state: a
# shell variable and working directory set before `wisp save` are still
# there in the VM that `wisp run --restore` brings back (same kernel, same
# processes, same console), its timers and both vCPUs work (`sleep`, a
# process on each CPU), and it then reboots cleanly.
export WISP_RUNTIME_DIR=/tmp/wisp-lab
SNAP=/tmp/linux.snap
rm -f /tmp/snap-in /tmp/snap-in2 $SNAP "$OUT"
mkfifo /tmp/snap-in
# The guest whose state is saved: keep the FIFO open for the whole run.
$W run --name lx --cpus 2 --kernel $BZ --initrd $RD --cmdline "$CMDLINE" </tmp/snap-in >"$OUT" 2>&1 &
WPID=$!
exec 7>/tmp/snap-in
_n=0
while ! grep -q 'wisp:/# ' "$OUT" 2>/dev/null && [ $_n -lt 300 ]; do sleep 0.2; _n=$((_n + 1)); done
printf '%s\n' 'X=kept-$((6 * 7)); cd /tmp; echo set=$X' >&7
_n=0
while ! grep -q 'set=kept-42' "$OUT" 2>/dev/null && [ $_n -lt 100 ]; do sleep 0.2; _n=$((_n + 1)); done
if $W save lx $SNAP >/tmp/save.out 2>&1; then
	ok "linux-save [$(cat /tmp/save.out)]"
else
	bad linux-save "$(cat /tmp/save.out) | $(tail_out "$OUT")"
fi
kill $WPID 2>/dev/null
wait $WPID 2>/dev/null
exec 7>&-
expect linux-restore-needs-snapshot 125 "snapshot '/tmp/none.snap': No such file or directory" -- $W run --restore /tmp/none.snap
# The restored guest: its shell (no new prompt: it was waiting at one) gets
# the next command, which must see the variable and the directory.
mkfifo /tmp/snap-in2
(
	exec 3>/tmp/snap-in2
	sleep 3
	printf '%s\n' 'sleep 1; taskset 2 true && echo got=$X in $(pwd) cpus=$(grep -c ^processor /proc/cpuinfo)' >&3
	sleep 4
	printf '%s\n' 'reboot -f' >&3
	sleep 5
) &
l2 linux-restore-keeps-shell-state 0 '^got=kept-42 in /tmp cpus=2' -i /tmp/snap-in2 -- $W run --restore $SNAP
rm -f /tmp/snap-in /tmp/snap-in2 $SNAP
