# Memory above the 3 GiB hole: the e820 map / PVH memmap carries both RAM
# ranges and the guest sees nearly all of it.
l2 mem-4g-pvh 0 '^memtotal_mb=(3[89][0-9][0-9]|40[0-9][0-9])$' -- $W run --mem 4G --kernel $VMLINUX --initrd $RD --cmdline "$CMDLINE wisp_run=\"echo memtotal_mb=\$((\$(sed -n 's/MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))\""
l2 mem-4g-bzimage 0 'BIOS-e820: \[mem 0x0000000100000000-0x000000013fffffff\] usable' -- $W run --mem 4G --kernel $BZ --initrd $RD --cmdline "console=ttyS0 reboot=t panic=-1 wisp_run=true"
