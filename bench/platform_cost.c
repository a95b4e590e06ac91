/* platform_cost: what the Linux platform pieces cost on this KVM, raw
 * ioctls only (no Wisp code), so that the numbers describe KVM and not us.
 * For each variant, REPS times: create a VM, register a 128 MiB memslot,
 * maybe create the irqchip (before or after that slot) and the PIT, create
 * one vCPU, update a second memslot, then destroy. Prints the median and
 * the 90th percentile of each step in microseconds.
 *
 * usage: platform_cost [REPS]   (default 30) */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SLOT_SIZE (128ull << 20)
#define MAX_REPS  1000

enum step { S_VM, S_SLOT, S_IRQCHIP, S_PIT, S_VCPU, S_SLOT2, S_DESTROY, S_TOTAL, NR_STEPS };
static const char *step_name[NR_STEPS] = {"create_vm", "memslot",      "irqchip", "pit2",
					  "vcpu",      "next_memslot", "destroy", "total"};

struct variant {
	const char *name;
	int irqchip; /* 0 none, 1 before the first memslot, 2 after it */
	int pit;
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "platform_cost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	int i = (n - 1) * p / 100;
	return v[i];
}

static void set_slot(int vm, int slot, uint64_t gpa, void *host, uint64_t size)
{
	struct kvm_userspace_memory_region r = {.slot = (uint32_t)slot,
						.guest_phys_addr = gpa,
						.memory_size = size,
						.userspace_addr = (uint64_t)(uintptr_t)host};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
}

static void run_variant(int kvm, const struct variant *v, int reps, void *mem)
{
	static double t[NR_STEPS][MAX_REPS];
	memset(t, 0, sizeof(t));
	for (int i = 0; i < reps; i++) {
		double t0 = now_us(), a = t0, b;
#define LAP(s)                                                                                     \
	do {                                                                                       \
		b = now_us();                                                                      \
		t[s][i] = b - a;                                                                   \
		a = b;                                                                             \
	} while (0)
		int vm = ioctl(kvm, KVM_CREATE_VM, 0);
		if (vm < 0)
			die("KVM_CREATE_VM");
		LAP(S_VM);
		if (v->irqchip == 1) {
			if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
				die("KVM_CREATE_IRQCHIP");
			LAP(S_IRQCHIP);
		}
		set_slot(vm, 0, 0, mem, SLOT_SIZE);
		LAP(S_SLOT);
		if (v->irqchip == 2) {
			if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
				die("KVM_CREATE_IRQCHIP");
			LAP(S_IRQCHIP);
		}
		if (v->pit) {
			struct kvm_pit_config pc = {.flags = KVM_PIT_SPEAKER_DUMMY};
			if (ioctl(vm, KVM_CREATE_PIT2, &pc) < 0)
				die("KVM_CREATE_PIT2");
			LAP(S_PIT);
		}
		int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		if (vcpu < 0)
			die("KVM_CREATE_VCPU");
		LAP(S_VCPU);
		/* A later memslot change (a device BAR, hotplug, dirty logging). */
		set_slot(vm, 1, 1ull << 32, (char *)mem, 2 << 20);
		LAP(S_SLOT2);
		close(vcpu);
		close(vm);
		LAP(S_DESTROY);
		t[S_TOTAL][i] = b - t0;
	}
	printf("%-26s", v->name);
	for (int s = 0; s < NR_STEPS; s++) {
		if ((s == S_IRQCHIP && !v->irqchip) || (s == S_PIT && !v->pit)) {
			printf(" %17s", "-");
			continue;
		}
		printf(" %8.0f/%-8.0f", pct(t[s], reps, 50), pct(t[s], reps, 90));
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 30;
	if (reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "usage: platform_cost [REPS 1..%d]\n", MAX_REPS);
		return 2;
	}
	const char *dev = getenv("WISP_KVM_DEVICE") ? getenv("WISP_KVM_DEVICE") : "/dev/kvm";
	int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die(dev);
	void *mem = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	/* A VM kept open for the whole run, as a VMM host usually has: without
	 * it the first/last vCPU flips a kernel static key each time. */
	int keeper = ioctl(kvm, KVM_CREATE_VM, 0);
	if (keeper < 0 || ioctl(keeper, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(keeper, KVM_CREATE_VCPU, 0) < 0)
		die("keeper VM");
	static const struct variant variants[] = {
		{"no irqchip", 0, 0},
		{"irqchip first (slot after)", 1, 0},
		{"irqchip after slot (wisp)", 2, 0},
		{"irqchip after slot + PIT", 2, 1},
	};
	printf("platform_cost: %d reps, microseconds median/p90\n%-26s", reps, "variant");
	for (int s = 0; s < NR_STEPS; s++)
		printf(" %17s", step_name[s]);
	printf("\n");
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++)
		run_variant(kvm, &variants[v], reps, mem);
	return 0;
}
