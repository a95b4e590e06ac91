/* `wisp check`: can this host run Wisp VMs, and if not, why? Like
 * `kata-runtime check`: one line per finding, exit 0 when VMs can run.
 * The Makefile asks it where the VM tests and the demo run: here, or in the
 * KVM lab (docs/lab.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "vmm/vmm.h"

/* Capabilities beyond the ones kvm_open() insists on, and what lacks
 * without them. All are in every x86 KVM since Linux 5.x. */
static const struct {
	long cap;
	const char *name;
	const char *needed_by;
} feature_caps[] = {
	{KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS", "fast vCPU starts"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "Linux guests"},
	{KVM_CAP_SPLIT_IRQCHIP, "KVM_CAP_SPLIT_IRQCHIP", "Linux guests"},
	{KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER", "Linux guests' timer"},
	{KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", "live migration"},
	{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "snapshots"},
	{KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "snapshots"},
	{KVM_CAP_XSAVE, "KVM_CAP_XSAVE", "snapshots"},
};

static bool quiet;
static int findings;

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void finding(const char *fmt, ...)
{
	findings++;
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	printf("wisp check: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static bool module_loaded(const char *name)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return stat(path, &st) == 0;
}

static void on_alarm(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

/* Run four real-mode instructions (mov al,0x5a; out 0xf1,al; hlt) in a
 * fresh VM and expect the port write: proof that a vCPU runs at all, which
 * opening /dev/kvm does not give (a nested KVM may refuse KVM_RUN).
 * Returns 0, or -1 with a reason in err. */
static int probe_vcpu(int kvm_fd, int run_size, char *err, size_t errlen)
{
	static const uint8_t code[] = {0xb0, 0x5a, 0xe6, 0xf1, 0xf4};
	int vm = -1, vcpu = -1, rc = -1;
	struct kvm_run *run = MAP_FAILED;
	size_t mem_len = 0x10000;
	uint8_t *mem =
		mmap(NULL, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	memcpy(mem + 0x1000, code, sizeof(code));
	vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	/* Intel needs a TSS area below 4 GiB for real mode; harmless elsewhere. */
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto out;
	}
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = mem_len,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto out;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		snprintf(err, errlen, "mmap of kvm_run: %s", strerror(errno));
		goto out;
	}
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
		goto out;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		snprintf(err, errlen, "setting vCPU registers: %s", strerror(errno));
		goto out;
	}
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	sigaction(SIGALRM, &sa, &old);
	alarm(5);
	int r = ioctl(vcpu, KVM_RUN, 0);
	int e = errno;
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	if (r < 0) {
		snprintf(err, errlen, "KVM_RUN: %s%s", strerror(e),
			 e == EINTR ? " (the vCPU ran 5 s without reaching its first port write)"
				    : "");
		goto out;
	}
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0xf1 || run->io.size != 1 ||
	    run->io.direction != KVM_EXIT_IO_OUT || ((uint8_t *)run)[run->io.data_offset] != 0x5a) {
		snprintf(err, errlen,
			 "a 5-byte real-mode probe did not exit with its port write (exit reason "
			 "%u)",
			 run->exit_reason);
		goto out;
	}
	rc = 0;
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	munmap(mem, mem_len);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: wisp check [-q]\n"
		   "  Says whether this host can run Wisp VMs and, if not, why (one line per\n"
		   "  finding). Exits 0 when it can, 1 when it cannot.\n"
		   "  -q, --quiet   print nothing; only the exit status\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	optind = 1;
	quiet = false;
	findings = 0;
	while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return WISP_EXIT_ERROR;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "wisp check: unexpected argument '%s'\n", argv[optind]);
		return WISP_EXIT_ERROR;
	}

	struct kvm kvm;
	char err[256];
	if (kvm_open(&kvm, err, sizeof(err)) < 0) {
		finding("%s", err);
		goto verdict;
	}
	for (size_t i = 0; i < sizeof(feature_caps) / sizeof(feature_caps[0]); i++)
		if (!kvm_check_cap(&kvm, feature_caps[i].cap))
			finding("%s: missing capability %s (needed by %s)", kvm_device_path(),
				feature_caps[i].name, feature_caps[i].needed_by);
	/* PVM runs guest user code natively but emulates every CPL0 instruction
	 * (~1.5 us each, docs/lab.md): Linux guests cannot boot on it, and it is
	 * not the KVM our users have. Its module name is the one sure sign. */
	if (module_loaded("kvm_pvm"))
		finding("%s is kvm-pvm, a software nested KVM: it emulates guest kernel code "
			"(CPL0) an instruction at a time, so Linux guests cannot run",
			kvm_device_path());
	if (probe_vcpu(kvm.fd, kvm.run_size, err, sizeof(err)) < 0)
		finding("%s: a vCPU cannot run: %s", kvm_device_path(), err);
	if (!findings && !quiet) {
		const char *how = module_loaded("kvm_intel") ? " (kvm_intel)"
				  : module_loaded("kvm_amd") ? " (kvm_amd)"
							     : "";
		printf("wisp check: %s: KVM API %d%s, every capability Wisp uses, a vCPU runs\n",
		       kvm_device_path(), KVM_API_VERSION, how);
	}
	kvm_close(&kvm);
verdict:
	if (!quiet) {
		if (findings)
			printf("wisp check: this host cannot run Wisp VMs (%d finding%s); "
			       "`make test` and `make demo` use the KVM lab (docs/lab.md)\n",
			       findings, findings == 1 ? "" : "s");
		else
			printf("wisp check: this host can run Wisp VMs\n");
	}
	return findings ? 1 : 0;
}
