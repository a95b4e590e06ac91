/* vCPUs and the run loop. The loop turns every exit into a bus access or a
 * VM state change; it never names a device.
 *
 * Kicking: the kick signal is blocked in vCPU threads except inside KVM_RUN
 * (KVM_SET_SIGNAL_MASK) and inside vcpu_wait() (ppoll), so a kick sent at any
 * moment either interrupts the wait it lands in or the next one, never lost.
 * immediate_exit covers the window in the same thread's signal handlers. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/x86.h"
#include "util/util.h"
#include "vmm/vmm.h"

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, VCPU_KICK_SIGNAL);
	return -pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/* The calling thread's signal mask with the kick signal unblocked. */
static void run_mask(sigset_t *m)
{
	pthread_sigmask(SIG_BLOCK, NULL, m);
	sigdelset(m, VCPU_KICK_SIGNAL);
}

int vcpu_create(struct vm *vm, int id, char *err, size_t errlen)
{
	struct vcpu *v = &vm->vcpus[id];
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		int e = errno;
		snprintf(err, errlen, "KVM_CREATE_VCPU %d: %s", id, strerror(e));
		v->fd = -1;
		return -e;
	}
	v->run =
		mmap(NULL, (size_t)vm->kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int e = errno;
		v->run = NULL;
		snprintf(err, errlen, "mmap kvm_run of vCPU %d: %s", id, strerror(e));
		return -e;
	}
	struct kvm_cpuid2 *c = x86_cpuid_for_vcpu(vm->kvm->cpuid, id, vm->nr_vcpus);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (vm->irqchip && kvm_check_cap(vm->kvm, KVM_CAP_TSC_DEADLINE_TIMER))
		x86_cpuid_add_irqchip_features(c);
	int r = ioctl(v->fd, KVM_SET_CPUID2, c);
	int e = errno;
	free(c);
	if (r < 0) {
		snprintf(err, errlen, "KVM_SET_CPUID2 on vCPU %d: %s", id, strerror(e));
		return -e;
	}
	/* KVM_RUN runs with this mask: the kick signal is let through there. */
	struct {
		struct kvm_signal_mask hdr;
		uint64_t set;
	} km = {.hdr.len = 8};
	sigset_t m;
	run_mask(&m);
	memcpy(&km.set, &m, 8);
	if (ioctl(v->fd, KVM_SET_SIGNAL_MASK, &km) < 0) {
		e = errno;
		snprintf(err, errlen, "KVM_SET_SIGNAL_MASK on vCPU %d: %s", id, strerror(e));
		return -e;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->kvm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&v->in_run))
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

/* Does this vCPU serve a control channel (single-threaded VMMs)? */
static bool serves_control(const struct vcpu *v)
{
	return v->id == 0 && v->vm->ctl_serve && v->vm->ctl_fd >= 0;
}

/* KVM_RUN returns EINTR for a pending kick but does not deliver it (the
 * signal is blocked again on return), so a kick that arrived while blocked
 * (e.g. just after vcpu_wait() saw immediate_exit and skipped ppoll) would
 * make every later KVM_RUN fail at once, for ever. Take it here: the loop
 * re-checks everything a kick is about. */
static void eat_kick(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, VCPU_KICK_SIGNAL);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&s, NULL, &zero) > 0)
		;
}

int vcpu_complete_io(struct vcpu *v)
{
	/* KVM finishes the pending exit first and only then looks at
	 * immediate_exit (api.rst, KVM_RUN): the guest does not run. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int r = ioctl(v->fd, KVM_RUN, 0);
	int e = errno;
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	eat_kick();
	if (r == 0)
		return -EIO; /* an exit after all: cannot happen with immediate_exit */
	return e == EINTR || e == EAGAIN ? 0 : -e;
}

/* Park while a pause is requested (vm_pause): first finish the pending
 * exit so that the saved state is an instruction boundary. */
static void park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	vcpu_complete_io(v);
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && !atomic_load(&vm->stop)) {
		/* vm_request_stop runs in signal handlers and cannot signal the
		 * condition: look at the stop flag now and then. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static bool events_pending(struct vm *vm)
{
	pthread_mutex_lock(&vm->events_lock);
	bool ev = vm->events != 0;
	pthread_mutex_unlock(&vm->events_lock);
	return ev;
}

void vcpu_wait(struct vcpu *v, uint64_t timeout_ns)
{
	struct vm *vm = v->vm;
	sigset_t m;
	run_mask(&m);
	/* With a control channel the wait also ends for control messages;
	 * they are served here and the wait goes on until its deadline, so
	 * the guest never sees a wake-up it did not ask for. A pause (for a
	 * snapshot) parks here too, and the wait then goes on as well. */
	bool ctl = serves_control(v);
	struct timespec ts, *tp = NULL;
	/* Saturates: a timeout near 2^64 is "for ever", not a wrapped deadline
	 * in the past that would make the guest spin. */
	uint64_t now0 = util_now_ns();
	uint64_t deadline = timeout_ns > UINT64_MAX - now0 ? UINT64_MAX : now0 + timeout_ns;
	struct pollfd pfd = {.fd = ctl ? vm->ctl_fd : -1, .events = POLLIN};
	for (;;) {
		if (atomic_load(&vm->pause_req) && !atomic_load(&vm->stop)) {
			park(v);
			if (events_pending(vm))
				return;
			continue;
		}
		if (__atomic_load_n(&v->run->immediate_exit, __ATOMIC_SEQ_CST) ||
		    atomic_load(&vm->stop))
			return;
		if (deadline != UINT64_MAX) {
			uint64_t now = util_now_ns();
			if (now >= deadline)
				return;
			ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
			ts.tv_nsec = (long)((deadline - now) % 1000000000u);
			tp = &ts;
		}
		int r = ppoll(ctl ? &pfd : NULL, ctl ? 1 : 0, tp, &m);
		if (r == 0)
			return;
		if (r < 0 && errno != EINTR)
			return;
		if (ctl)
			vm->ctl_serve(vm);
	}
}

void vcpu_save_crash_regs(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	pthread_mutex_lock(&vm->lock);
	if (!vm->crash_regs_valid) {
		vm->crash_regs = r;
		vm->crash_sregs = s;
		vm->crash_regs_valid = true;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* After KVM_EXIT_SHUTDOWN, KVM on AMD (SVM) has already reset the vCPU: its
 * registers are the power-on state, not the guest's. Save them only if they
 * are not that state; false if they were lost. */
static bool vcpu_save_shutdown_regs(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return false;
	if (r.rip == 0xfff0 && s.cs.selector == 0xf000 && !(s.cr0 & 1))
		return false; /* reset vector, real mode */
	vcpu_save_crash_regs(v);
	return true;
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	/* KVM fills these; check anyway that the data lies in the kvm_run page. */
	if (size == 0 || size > 8 || off > (uint64_t)v->vm->kvm->run_size ||
	    (uint64_t)size * count > (uint64_t)v->vm->kvm->run_size - off) {
		vm_crash(v->vm, "KVM_EXIT_IO with bad geometry (size %u, count %u)", size, count);
		return;
	}
	uint8_t *data = (uint8_t *)run + off;
	for (uint32_t i = 0; i < count; i++)
		if (!bus_dispatch(&v->vm->pio, v, run->io.port, data + i * size, size, out))
			v->stats.unhandled++;
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > 8) {
		vm_crash(v->vm, "KVM_EXIT_MMIO with bad length %u", len);
		return;
	}
	if (!bus_dispatch(&v->vm->mmio, v, run->mmio.phys_addr, run->mmio.data, len,
			  run->mmio.is_write))
		v->stats.unhandled++;
}

static void crash_with_regs(struct vcpu *v, const char *what, unsigned long long detail)
{
	vcpu_save_crash_regs(v);
	vm_crash(v->vm, "%s 0x%llx on vCPU %d", what, detail, v->id);
}

void vcpu_loop(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;
	v->thread = pthread_self();
	atomic_store(&v->in_run, true);
	/* A vCPU restored in the middle of a POLL hypercall finishes it first. */
	if (v->poll_active)
		hypercall_finish_poll(v);
	while (!atomic_load(&vm->stop)) {
		if (atomic_load(&vm->pause_req)) {
			park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				eat_kick();
				v->stats.intr++;
				if (serves_control(v))
					vm->ctl_serve(vm);
				continue;
			}
			vm_crash(vm, "KVM_RUN on vCPU %d: %s", v->id, strerror(errno));
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			v->stats.io++;
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			v->stats.mmio++;
			handle_mmio(v);
			break;
		case KVM_EXIT_HLT:
			/* Only VMs without an in-kernel LAPIC see this exit, and
			 * there nothing can ever wake the vCPU: the guest stopped
			 * without saying why, which is a crash. */
			v->stats.hlt++;
			vcpu_save_crash_regs(v);
			vm_crash(vm, "guest halted (HLT) with nothing to wake it, on vCPU %d",
				 v->id);
			break;
		case KVM_EXIT_INTR:
			v->stats.intr++;
			break;
		case KVM_EXIT_SHUTDOWN:
			v->stats.shutdown++;
			if (vm->reset_stops) { /* Linux `reboot -f` with reboot=t */
				vm_request_stop(vm, VM_STOP_RESET);
				break;
			}
			if (vcpu_save_shutdown_regs(v))
				vm_crash(vm, "triple fault (KVM_EXIT_SHUTDOWN) on vCPU %d", v->id);
			else
				vm_crash(vm,
					 "triple fault (KVM_EXIT_SHUTDOWN) on vCPU %d; its "
					 "registers "
					 "are lost: KVM reset the vCPU at the shutdown (AMD SVM "
					 "does)",
					 v->id);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			v->stats.other++;
			crash_with_regs(
				v, "VM entry failed, hardware reason",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			v->stats.other++;
			crash_with_regs(v, "KVM internal error, suberror", run->internal.suberror);
			break;
		default:
			v->stats.other++;
			crash_with_regs(v, "unexpected KVM exit reason", run->exit_reason);
			break;
		}
	}
	atomic_store(&v->in_run, false);
}
