# --cpus N: the MP table lists N processors, Linux brings all of them up.
cmd='grep -c ^processor /proc/cpuinfo'
l2 cpus-2-bzimage 0 '^2$' -- $W run --cpus 2 --kernel $BZ --initrd $RD --cmdline "$CMDLINE wisp_run=\"$cmd\""
l2 cpus-2-pvh 0 '^2$' -- $W run --cpus 2 --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"$cmd\""
l2 cpus-1-default 0 '^1$' -- $W run --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"$cmd\""
