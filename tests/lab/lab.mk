# The KVM lab (included by tests/tests.mk): Linux-guest tests run in a QEMU
# TCG VM whose CPU has AMD SVM + NPT, with Wisp booting the guest kernel on
# that VM's KVM. See docs/lab.md.
#   make lab-test                  every test in tests/lab/tests/
#   make lab-test LAB_FILTER=boot  some of them
#   make lab-bench                 10 interleaved rounds of Wisp vs QEMU microvm
#                                  (boot to init; virtio-blk and virtio-net throughput)
lab-test: $(BUILD)/wisp $(GUEST_INITRD)
	scripts/deps.sh lab
	tests/lab/run.sh

lab-bench: $(BUILD)/wisp $(GUEST_INITRD)
	scripts/deps.sh lab
	LAB_FILTER=bench LAB_BENCH_ROUNDS=$${LAB_BENCH_ROUNDS:-10} tests/lab/run.sh

.PHONY: lab-test lab-bench
