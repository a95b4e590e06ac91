# Runs inside L1 (started by l1-init from the 9p share): every test script
# in /lab/tests, in name order, each in its own shell so that one broken
# script cannot stop the others. LAB_FILTER (a regex on the file name) picks
# some; LAB_BENCH_ROUNDS sets the benchmark's rounds.
echo "lab-l1: running tests at uptime $(cut -d' ' -f1 /proc/uptime)"
for t in /lab/tests/*.sh; do
	n=$(basename "$t" .sh)
	if [ -n "$LAB_FILTER" ] && ! echo "$n" | grep -qE "$LAB_FILTER"; then
		continue
	fi
	echo "lab-test: $n"
	# Only a script that dies half-way (syntax error...) returns non-zero.
	sh -c ". /lab/lib.sh; . $t; exit 0" || echo "FAIL: $n: test script died with status $?"
done
echo "lab-l1: tests finished at uptime $(cut -d' ' -f1 /proc/uptime)"
