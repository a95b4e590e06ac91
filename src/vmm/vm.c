/* A VM: its KVM fd, guest RAM registered as memslots, the two buses, the
 * vCPUs, and how it stops. */
#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/x86.h"
#include "util/util.h"
#include "vmm/vmm.h"

/* Intel VMX needs three pages for real-mode emulation somewhere in the
 * guest-physical space; put them at the top of the MMIO hole. */
#define VMX_TSS_ADDR 0xfffbd000ull

int vm_create(struct vm *vm, struct kvm *kvm, uint64_t mem_size, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm = kvm;
	vm->fd = -1;
	vm->mem.memfd = -1;
	vm->console_fd = 1;
	vm->ctl_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->events_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	int r;
	if ((r = bus_init(&vm->pio)) || (r = bus_init(&vm->mmio))) {
		snprintf(err, errlen, "bus init: %s", strerror(-r));
		return r;
	}
	vm->fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(-r));
		return r;
	}
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, VMX_TSS_ADDR) < 0) {
		r = -errno;
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(-r));
		return r;
	}
	r = gmem_init(&vm->mem, mem_size);
	if (r) {
		snprintf(err, errlen, "guest memory of %llu bytes: %s",
			 (unsigned long long)mem_size, strerror(-r));
		return r;
	}
	struct x86_ram ram[2];
	int n = x86_ram_layout(mem_size, ram);
	for (int i = 0; i < n; i++) {
		r = gmem_add_region(&vm->mem, ram[i].gpa, ram[i].size, ram[i].fd_offset);
		if (r) {
			snprintf(err, errlen, "guest memory region: %s", strerror(-r));
			return r;
		}
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.guest_phys_addr = ram[i].gpa,
			.memory_size = ram[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->mem.regions[i].host,
		};
		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			r = -errno;
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

int vm_enable_split_irqchip(struct vm *vm)
{
	if (!kvm_check_cap(vm->kvm, KVM_CAP_SPLIT_IRQCHIP))
		return -ENOTSUP;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
	if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	vm->split_irqchip = true;
	return 0;
}

int vm_create_vcpus(struct vm *vm, int n, char *err, size_t errlen)
{
	if (n < 1 || n > WISP_MAX_VCPUS || n > vm->kvm->max_vcpus) {
		snprintf(err, errlen, "%d vCPUs requested; this host allows 1 to %d", n,
			 vm->kvm->max_vcpus < WISP_MAX_VCPUS ? vm->kvm->max_vcpus : WISP_MAX_VCPUS);
		return -EINVAL;
	}
	vm->nr_vcpus = n;
	for (int i = 0; i < n; i++)
		vm->vcpus[i].fd = -1;
	for (int i = 0; i < n; i++) {
		int r = vcpu_create(vm, i, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

struct device *vm_add_device(struct vm *vm, const struct device_ops *ops, void *opaque)
{
	struct device *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	*d = (struct device){.ops = ops, .opaque = opaque, .next = vm->devices};
	vm->devices = d;
	return d;
}

void vm_remove_device(struct vm *vm, void *opaque)
{
	for (struct device **p = &vm->devices; *p; p = &(*p)->next)
		if ((*p)->opaque == opaque) {
			struct device *d = *p;
			*p = d->next;
			free(d);
			return;
		}
}

struct device *vm_find_device(struct vm *vm, const char *name)
{
	for (struct device *d = vm->devices; d; d = d->next)
		if (!strcmp(d->ops->name, name))
			return d;
	return NULL;
}

/* The list is newest first: print the rest of it before d. */
static void print_stats_from(struct device *d, int fd)
{
	if (!d)
		return;
	print_stats_from(d->next, fd);
	if (d->ops->stats)
		d->ops->stats(d->opaque, fd);
}

void vm_print_device_stats(struct vm *vm, int fd)
{
	print_stats_from(vm->devices, fd);
}

int device_state_check(const char *what, uint32_t version, size_t len, uint32_t known, size_t size,
		       bool at_least, char *err, size_t errlen)
{
	if (version == known && (at_least ? len >= size : len == size))
		return 0;
	snprintf(err, errlen,
		 "%s version %u (%zu bytes) is not one this device knows (version %u, %s%zu "
		 "bytes)",
		 what, version, len, known, at_least ? "at least " : "", size);
	return -EINVAL;
}

void vm_destroy(struct vm *vm)
{
	/* Device threads stop first: they may kick vCPUs. */
	for (struct device *d = vm->devices; d; d = d->next)
		if (d->ops->stop)
			d->ops->stop(d->opaque);
	/* vCPUs next: nothing may run device code once devices are freed. */
	for (int i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	while (vm->devices) {
		struct device *d = vm->devices;
		vm->devices = d->next;
		if (d->ops->destroy)
			d->ops->destroy(d->opaque);
		free(d);
	}
	vm->nr_vcpus = 0;
	outlet_close(&vm->console_out);
	vm->console_out_ready = false;
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	gmem_destroy(&vm->mem);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->events_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
}

int vm_pause(struct vm *vm, struct vcpu *self)
{
	int want = vm->nr_vcpus - (self ? 1 : 0);
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, true);
	pthread_mutex_unlock(&vm->pause_lock);
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (&vm->vcpus[i] != self)
			vcpu_kick(&vm->vcpus[i]);
	int r = 0;
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < want) {
		if (atomic_load(&vm->stop)) {
			r = -ESRCH;
			break;
		}
		/* A vCPU that is not in KVM_RUN yet (or between two) sees the
		 * request at its next entry; kick again now and then in case a
		 * kick landed before its thread took the signal. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 2000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts) == ETIMEDOUT)
			for (int i = 0; i < vm->nr_vcpus; i++)
				if (&vm->vcpus[i] != self)
					vcpu_kick(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (r)
		vm_unpause(vm);
	return r;
}

void vm_unpause(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

uint64_t vm_guest_now(const struct vm *vm)
{
	return (uint64_t)((int64_t)util_now_ns() + vm->mono_offset);
}

void vm_request_stop(struct vm *vm, enum vm_stop reason)
{
	int expected = VM_RUNNING;
	if (!atomic_compare_exchange_strong(&vm->stop, &expected, (int)reason))
		return;
	for (int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

void vm_exit_guest(struct vm *vm, int status)
{
	/* Written before the stop flag so that whoever sees the flag sees it. */
	if (atomic_load(&vm->stop) == VM_RUNNING)
		vm->exit_status = status;
	vm_request_stop(vm, VM_STOP_EXIT);
}

void vm_crash(struct vm *vm, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->crash[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->crash, sizeof(vm->crash), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
	vm_request_stop(vm, VM_STOP_CRASH);
}

/* The lock makes the kick safe: a vCPU counted in `pollers` is inside POLL,
 * so its thread is alive while we signal it. */
void vm_raise_events(struct vm *vm, uint64_t mask)
{
	pthread_mutex_lock(&vm->events_lock);
	vm->events |= mask;
	if (vm->pollers)
		for (int i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_unlock(&vm->events_lock);
}

uint64_t vm_poll_events(struct vm *vm, struct vcpu *vcpu, uint64_t timeout_ns)
{
	pthread_mutex_lock(&vm->events_lock);
	uint64_t ev = vm->events;
	vm->events = 0;
	vm->pollers++;
	pthread_mutex_unlock(&vm->events_lock);
	/* An event raised from here on kicks us, and the kick is never lost
	 * (see vcpu_wait). */
	if (!ev)
		vcpu_wait(vcpu, timeout_ns);
	pthread_mutex_lock(&vm->events_lock);
	ev |= vm->events;
	vm->events = 0;
	vm->pollers--;
	pthread_mutex_unlock(&vm->events_lock);
	return ev;
}

static void *vcpu_thread(void *arg)
{
	sec_seccomp_thread(SEC_THREAD_VCPU);
	vcpu_loop(arg);
	return NULL;
}

int vm_run(struct vm *vm)
{
	if (!vm->console_ring)
		vm_console_open(vm);
	for (int i = 1; i < vm->nr_vcpus; i++) {
		int r = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		if (r) {
			vm_crash(vm, "cannot start vCPU thread %d: %s", i, strerror(r));
			break;
		}
		vm->vcpus[i].thread_started = true;
	}
	vcpu_loop(&vm->vcpus[0]);
	for (int i = 1; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	return atomic_load(&vm->stop);
}

void vm_stats(const struct vm *vm, struct exit_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < vm->nr_vcpus; i++) {
		const struct exit_stats *s = &vm->vcpus[i].stats;
		out->io += s->io;
		out->mmio += s->mmio;
		out->hlt += s->hlt;
		out->shutdown += s->shutdown;
		out->intr += s->intr;
		out->hypercall += s->hypercall;
		out->unhandled += s->unhandled;
		out->other += s->other;
	}
}

void vm_log_crash(struct vm *vm)
{
	const char *why = vm->crash[0] ? vm->crash : "unknown reason";
	if (!vm->crash_regs_valid) {
		log_error(NULL, "guest crashed: %s", why);
		return;
	}
	const struct kvm_regs *r = &vm->crash_regs;
	const struct kvm_sregs *s = &vm->crash_sregs;
	/* One message: the registers stay with the reason in a JSON log. */
	log_error(NULL,
		  "guest crashed: %s\n"
		  "  rip %016llx  rsp %016llx  rflags %08llx\n"
		  "  rax %016llx  rbx %016llx  rcx %016llx  rdx %016llx\n"
		  "  rsi %016llx  rdi %016llx  rbp %016llx\n"
		  "  r8  %016llx  r9  %016llx  r10 %016llx  r11 %016llx\n"
		  "  r12 %016llx  r13 %016llx  r14 %016llx  r15 %016llx\n"
		  "  cs %04x (dpl %u, l %u)  ss %04x  cr0 %08llx  cr2 %016llx  cr3 %016llx  cr4 "
		  "%08llx  efer %llx",
		  why, r->rip, r->rsp, r->rflags, r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi,
		  r->rbp, r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
		  s->cs.selector, s->cs.dpl, s->cs.l, s->ss.selector, s->cr0, s->cr2, s->cr3,
		  s->cr4, s->efer);
}

int64_t vm_console_write(struct vm *vm, const void *buf, size_t len)
{
	if (vm->console_ring) {
		ring_write(vm->console_ring, buf, len);
		return (int64_t)len;
	}
	if (!vm->console_out_ready)
		vm_console_open(vm);
	return outlet_write(&vm->console_out, buf, len, &vm->stop);
}

void vm_console_open(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->console_out_ready) {
		outlet_init(&vm->console_out, vm->console_fd);
		vm->console_out_ready = true;
	}
	pthread_mutex_unlock(&vm->lock);
}
