/* The unikernel hypercall interface (include/wisp/abi.h): a 32-bit `out` to
 * WISP_HC_BASE + n. The value is the guest-physical address of an argument
 * struct, read and written back only through the checked accessor. A guest
 * that passes an argument struct outside its RAM has broken the ABI and is
 * stopped as crashed; a bad buffer inside a valid struct gets -EFAULT. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp/abi.h>

#include "devices/devices.h"
#include "vmm/vmm.h"

static const char *const vector_names[WISP_NR_TRAPS] = {
	[0] = "#DE divide error",
	[1] = "#DB debug",
	[2] = "NMI",
	[3] = "#BP breakpoint",
	[4] = "#OF overflow",
	[5] = "#BR bound range",
	[6] = "#UD invalid opcode",
	[7] = "#NM device not available",
	[8] = "#DF double fault",
	[10] = "#TS invalid TSS",
	[11] = "#NP segment not present",
	[12] = "#SS stack fault",
	[13] = "#GP general protection",
	[14] = "#PF page fault",
	[16] = "#MF x87 error",
	[17] = "#AC alignment check",
	[18] = "#MC machine check",
	[19] = "#XM SIMD error",
	[20] = "#VE virtualisation",
	[21] = "#CP control protection",
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t console_write(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (len > WISP_CONSOLE_MAX)
		return -EINVAL;
	const char *p = gmem_ptr(&vm->mem, gpa, len);
	if (!p)
		return -EFAULT;
	return vm_console_write(vm, p, len);
}

static void report_fault(struct vm *vm, const struct wisp_hc_fault *f)
{
	const char *name = f->vector < WISP_NR_TRAPS && vector_names[f->vector]
				   ? vector_names[f->vector]
				   : "exception";
	if (f->vector == 14)
		vm_crash(vm,
			 "%s (vector %llu) at rip 0x%llx, error code 0x%llx, address 0x%llx, rsp "
			 "0x%llx",
			 name, (unsigned long long)f->vector, (unsigned long long)f->rip,
			 (unsigned long long)f->error_code, (unsigned long long)f->cr2,
			 (unsigned long long)f->rsp);
	else
		vm_crash(vm,
			 "%s (vector %llu) at rip 0x%llx, error code 0x%llx, rsp 0x%llx, cs "
			 "0x%llx, rflags 0x%llx",
			 name, (unsigned long long)f->vector, (unsigned long long)f->rip,
			 (unsigned long long)f->error_code, (unsigned long long)f->rsp,
			 (unsigned long long)f->cs, (unsigned long long)f->rflags);
}

static void hypercall(void *opaque, struct vcpu *vcpu, uint64_t nr, uint8_t *data, uint32_t len,
		      bool is_write)
{
	struct vm *vm = opaque;
	if (!is_write) {
		memset(data, 0xff, len); /* hypercall ports are write-only */
		return;
	}
	vcpu->stats.hypercall++;
	if (!vm->first_hypercall_ns)
		vm->first_hypercall_ns = now_ns(CLOCK_MONOTONIC);
	uint32_t arg = 0;
	memcpy(&arg, data, len < 4 ? len : 4);
	if (len != 4) {
		vm_crash(vm, "hypercall %llu with a %u-byte write (must be 4)",
			 (unsigned long long)nr, len);
		return;
	}
	if (nr == WISP_HC_EXIT) {
		vm_exit_guest(vm, (int)(arg & 0xff));
		return;
	}
	size_t argsz = nr == WISP_HC_CONSOLE ? sizeof(struct wisp_hc_console)
		       : nr == WISP_HC_TIME  ? sizeof(struct wisp_hc_time)
		       : nr == WISP_HC_FAULT ? sizeof(struct wisp_hc_fault)
		       : nr == WISP_HC_POLL  ? sizeof(struct wisp_hc_poll)
					     : 0;
	if (!argsz) {
		vm_crash(vm, "unknown hypercall %llu", (unsigned long long)nr);
		return;
	}
	void *a = gmem_ptr(&vm->mem, arg, argsz);
	if (!a) {
		vm_crash(vm, "hypercall %llu: argument at 0x%x lies outside guest RAM",
			 (unsigned long long)nr, arg);
		return;
	}
	switch (nr) {
	case WISP_HC_CONSOLE: {
		struct wisp_hc_console c;
		memcpy(&c, a, sizeof(c)); /* read once: the guest may change it */
		c.ret = console_write(vm, c.buf, c.len);
		memcpy(a, &c, sizeof(c));
		break;
	}
	case WISP_HC_TIME: {
		struct wisp_hc_time t = {now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_REALTIME)};
		memcpy(a, &t, sizeof(t));
		break;
	}
	case WISP_HC_FAULT: {
		struct wisp_hc_fault f;
		memcpy(&f, a, sizeof(f));
		report_fault(vm, &f);
		break;
	}
	case WISP_HC_POLL: {
		struct wisp_hc_poll p;
		memcpy(&p, a, sizeof(p));
		p.events = vm_poll_events(vm, vcpu, p.timeout_ns);
		memcpy(a, &p, sizeof(p));
		break;
	}
	}
}

int hypercall_register(struct vm *vm)
{
	return bus_register(&vm->pio, WISP_HC_BASE, WISP_HC_COUNT, hypercall, vm, "hypercall");
}
