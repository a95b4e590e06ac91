/* A VM's state from and to KVM: vCPUs (registers, special registers,
 * FPU/XSAVE, XCRs, MSRs, LAPIC, pending events, debug registers, MP state,
 * CPUID), the in-kernel irqchip, kvmclock, the guest's monotonic clock, and
 * each device's own state struct. The VM is paused while this runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "snapshot/snapshot.h"

/* The MSRs KVM says a VMM should save (KVM_GET_MSR_INDEX_LIST), asked once. */
static struct {
	uint32_t n;
	uint32_t idx[SNAP_MAX_MSRS];
	bool done;
} msr_list;

static int load_msr_list(struct kvm *kvm)
{
	if (msr_list.done)
		return 0;
	struct {
		struct kvm_msr_list l;
		uint32_t idx[SNAP_MAX_MSRS];
	} ml = {.l.nmsrs = SNAP_MAX_MSRS};
	if (ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, &ml) < 0)
		return -errno;
	msr_list.n = ml.l.nmsrs;
	memcpy(msr_list.idx, ml.idx, ml.l.nmsrs * sizeof(uint32_t));
	msr_list.done = true;
	return 0;
}

static int xsave_size(struct kvm *kvm)
{
	int n = kvm_check_cap(kvm, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? n : (int)sizeof(struct kvm_xsave);
}

/* An ioctl on vCPU v (save and restore) that must succeed: on failure, err
 * names the vCPU and the call, and the function returns -errno. */
#define IOCTL(fd, req, arg, what)                                                                  \
	do {                                                                                       \
		if (ioctl(fd, req, arg) < 0) {                                                     \
			int e_ = errno;                                                            \
			snprintf(err, errlen, "vCPU %d: %s: %s", v->id, what, strerror(e_));       \
			return -e_;                                                                \
		}                                                                                  \
	} while (0)

/* Read every MSR of the list that this vCPU can give; those KVM refuses
 * to read hold no state for this guest and are left out. */
static int get_msrs(struct vcpu *v, struct kvm_msr_entry *out, uint32_t *n)
{
	struct kvm_msrs *req = malloc(sizeof(*req) + SNAP_MAX_MSRS * sizeof(req->entries[0]));
	if (!req)
		return -ENOMEM;
	uint32_t count = msr_list.n, done = 0;
	for (uint32_t i = 0; i < count; i++)
		out[i] = (struct kvm_msr_entry){.index = msr_list.idx[i]};
	while (done < count) {
		req->nmsrs = count - done;
		req->pad = 0;
		memcpy(req->entries, &out[done], (count - done) * sizeof(out[0]));
		/* KVM_GET_MSRS reads in order and stops at the first it refuses. */
		int r = ioctl(v->fd, KVM_GET_MSRS, req);
		if (r < 0) {
			int e = errno;
			free(req);
			return -e;
		}
		memcpy(&out[done], req->entries, (size_t)r * sizeof(out[0]));
		done += (uint32_t)r;
		if (done < count) { /* drop the refused one and go on after it */
			memmove(&out[done], &out[done + 1], (count - done - 1) * sizeof(out[0]));
			count--;
		}
	}
	*n = count;
	free(req);
	return 0;
}

static int save_vcpu(struct vm *vm, struct vcpu *v, struct wbuf *out, char *err, size_t errlen)
{
	struct snap_vcpu s;
	memset(&s, 0, sizeof(s));
	s.id = (uint32_t)v->id;
	IOCTL(v->fd, KVM_GET_REGS, &s.regs, "KVM_GET_REGS");
	IOCTL(v->fd, KVM_GET_SREGS, &s.sregs, "KVM_GET_SREGS");
	bool xsave = kvm_check_cap(vm->kvm, KVM_CAP_XSAVE);
	uint8_t *xs = NULL;
	int xlen = 0;
	if (xsave) {
		xlen = xsave_size(vm->kvm);
		xs = calloc(1, (size_t)xlen);
		if (!xs) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		unsigned long req =
			xlen > (int)sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
		if (ioctl(v->fd, req, xs) < 0) {
			int e = errno;
			free(xs);
			snprintf(err, errlen, "vCPU %d: KVM_GET_XSAVE: %s", v->id, strerror(e));
			return -e;
		}
		s.flags |= SNAP_VCPU_XSAVE;
		s.xsave_len = (uint32_t)xlen;
	} else {
		IOCTL(v->fd, KVM_GET_FPU, &s.fpu, "KVM_GET_FPU");
	}
	int r = 0;
#define TRY(req, arg, what)                                                                        \
	if (!r && ioctl(v->fd, req, arg) < 0) {                                                    \
		r = -errno;                                                                        \
		snprintf(err, errlen, "vCPU %d: %s: %s", v->id, what, strerror(-r));               \
	}
	if (kvm_check_cap(vm->kvm, KVM_CAP_XCRS)) {
		TRY(KVM_GET_XCRS, &s.xcrs, "KVM_GET_XCRS");
		s.flags |= SNAP_VCPU_XCRS;
	}
	TRY(KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS");
	TRY(KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS");
	TRY(KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE");
	if (vm->irqchip || vm->split_irqchip) {
		TRY(KVM_GET_LAPIC, &s.lapic, "KVM_GET_LAPIC");
		s.flags |= SNAP_VCPU_LAPIC;
	}
#undef TRY
	if (v->poll_active) {
		s.flags |= SNAP_VCPU_POLL;
		s.poll_arg = v->poll_arg;
		s.poll_deadline = v->poll_deadline;
	}
	struct kvm_msr_entry *msrs = calloc(SNAP_MAX_MSRS, sizeof(*msrs));
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[SNAP_MAX_CPUID];
	} *cpuid = calloc(1, sizeof(*cpuid));
	if (!r && (!msrs || !cpuid)) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
	if (!r && (r = get_msrs(v, msrs, &s.nr_msrs)))
		snprintf(err, errlen, "vCPU %d: KVM_GET_MSRS: %s", v->id, strerror(-r));
	if (!r) {
		cpuid->h.nent = SNAP_MAX_CPUID;
		if (ioctl(v->fd, KVM_GET_CPUID2, cpuid) < 0) {
			r = -errno;
			snprintf(err, errlen, "vCPU %d: KVM_GET_CPUID2: %s", v->id, strerror(-r));
		}
		s.nr_cpuid = cpuid->h.nent;
	}
	if (!r) {
		uint64_t xpad = ((uint64_t)s.xsave_len + 7) & ~7ull;
		uint64_t len = sizeof(s) + xpad + s.nr_msrs * sizeof(*msrs) +
			       s.nr_cpuid * sizeof(struct kvm_cpuid_entry2);
		snap_put_rec(out, SNAP_REC_VCPU, 1, len);
		wbuf_put(out, &s, sizeof(s));
		if (xs) {
			wbuf_put(out, xs, s.xsave_len);
			wbuf_align(out, 8);
		}
		wbuf_put(out, msrs, s.nr_msrs * sizeof(*msrs));
		wbuf_put(out, cpuid->e, s.nr_cpuid * sizeof(struct kvm_cpuid_entry2));
		wbuf_align(out, 8);
	}
	free(xs);
	free(msrs);
	free(cpuid);
	return r;
}

void snap_quiesce(struct vm *vm, bool pause)
{
	for (struct device *d = vm->devices; d; d = d->next)
		if (d->ops->quiesce)
			d->ops->quiesce(d->opaque, pause);
}

int snap_save_state(struct vm *vm, const char *config, size_t config_len, struct wbuf *out,
		    char *err, size_t errlen)
{
	int r = load_msr_list(vm->kvm);
	if (r) {
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-r));
		return r;
	}
	/* Devices first: one that cannot be saved fails the save before any
	 * work is done. */
	for (struct device *d = vm->devices; d; d = d->next)
		if (!d->ops->save) {
			snprintf(err, errlen, "device '%s' does not support snapshots",
				 d->ops->name);
			return -ENOTSUP;
		}
	struct snap_vm s;
	memset(&s, 0, sizeof(s));
	s.mem_size = vm->mem.size;
	s.nr_vcpus = (uint32_t)vm->nr_vcpus;
	s.flags = (vm->irqchip ? SNAP_VM_IRQCHIP : 0) |
		  (vm->split_irqchip ? SNAP_VM_SPLIT_IRQCHIP : 0) |
		  (vm->reset_stops ? SNAP_VM_RESET_STOPS : 0);
	s.guest_mono_ns = vm_guest_now(vm);
	long khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	s.tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	if (vm->irqchip && kvm_check_cap(vm->kvm, KVM_CAP_ADJUST_CLOCK)) {
		if (ioctl(vm->fd, KVM_GET_CLOCK, &s.clock) < 0) {
			r = -errno;
			snprintf(err, errlen, "KVM_GET_CLOCK: %s", strerror(-r));
			return r;
		}
		s.flags |= SNAP_VM_CLOCK;
	}
	s.nr_regions = (uint32_t)vm->mem.nr_regions;
	for (int i = 0; i < vm->mem.nr_regions; i++) {
		s.regions[i].gpa = vm->mem.regions[i].gpa;
		s.regions[i].size = vm->mem.regions[i].size;
		s.regions[i].fd_offset = vm->mem.regions[i].fd_offset;
	}
	snap_put_rec(out, SNAP_REC_VM, 1, sizeof(s));
	wbuf_put(out, &s, sizeof(s));
	if (config_len) {
		snap_put_rec(out, SNAP_REC_CONFIG, 1, config_len);
		wbuf_put(out, config, config_len);
		wbuf_align(out, 8);
	}
	/* Devices before the vCPUs and the irqchip: finishing a disk request
	 * may raise an interrupt, which must be in the state saved after. */
	uint32_t index = 0;
	for (struct device *d = vm->devices; d; d = d->next, index++) {
		struct wbuf dev = {0};
		uint32_t version = 0;
		r = d->ops->save(d->opaque, &dev, &version);
		if (!r)
			r = wbuf_error(&dev);
		if (r == -ENOTSUP) {
			snprintf(err, errlen, "device '%s' does not support snapshots",
				 d->ops->name);
			wbuf_free(&dev);
			return r;
		}
		if (r) {
			snprintf(err, errlen, "device '%s': cannot save its state: %s",
				 d->ops->name, strerror(-r));
			wbuf_free(&dev);
			return r;
		}
		struct snap_dev h;
		memset(&h, 0, sizeof(h));
		snprintf(h.name, sizeof(h.name), "%s", d->ops->name);
		h.index = index;
		h.dev_version = version;
		snap_put_rec(out, SNAP_REC_DEVICE, 1, sizeof(h) + dev.len);
		wbuf_put(out, &h, sizeof(h));
		wbuf_put(out, dev.p, dev.len);
		wbuf_align(out, 8);
		wbuf_free(&dev);
	}
	for (int i = 0; i < vm->nr_vcpus; i++)
		if ((r = save_vcpu(vm, &vm->vcpus[i], out, err, errlen)))
			return r;
	if (vm->irqchip) {
		struct snap_irqchip ic;
		memset(&ic, 0, sizeof(ic));
		for (int i = 0; i < 3; i++) {
			ic.chip[i].chip_id = (uint32_t)i;
			if (ioctl(vm->fd, KVM_GET_IRQCHIP, &ic.chip[i]) < 0) {
				r = -errno;
				snprintf(err, errlen, "KVM_GET_IRQCHIP %d: %s", i, strerror(-r));
				return r;
			}
		}
		snap_put_rec(out, SNAP_REC_IRQCHIP, 1, sizeof(ic));
		wbuf_put(out, &ic, sizeof(ic));
	}
	if ((r = wbuf_error(out)))
		snprintf(err, errlen, "out of memory");
	return r;
}

/* --- restore ---------------------------------------------------------------- */

/* The vCPU was created with this host's CPUID for this VM; a snapshot from
 * a host whose CPU offers other features cannot run here safely. */
static int check_cpuid(struct vcpu *v, const struct snap_vcpu_img *s, char *err, size_t errlen)
{
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[SNAP_MAX_CPUID];
	} *cur = calloc(1, sizeof(*cur));
	if (!cur) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cur->h.nent = SNAP_MAX_CPUID;
	int r = 0;
	if (ioctl(v->fd, KVM_GET_CPUID2, cur) < 0) {
		r = -errno;
		snprintf(err, errlen, "vCPU %d: KVM_GET_CPUID2: %s", v->id, strerror(-r));
	} else if (cur->h.nent != s->v.nr_cpuid ||
		   memcmp(cur->e, s->cpuid, cur->h.nent * sizeof(cur->e[0]))) {
		r = -EOPNOTSUPP;
		snprintf(err, errlen,
			 "snapshot's CPU (CPUID of vCPU %d) differs from what this host offers: "
			 "it cannot be restored here",
			 v->id);
	}
	free(cur);
	return r;
}

/* KVM_SET_MSRS writes in order and stops at the first MSR it refuses.
 * Some KVMs refuse a write of an MSR they let us read (PVM does for
 * MSR_KVM_POLL_CONTROL); when the fresh vCPU already holds the saved value,
 * nothing is lost by skipping it. Any other refusal fails the restore. */
static int set_msrs(struct vcpu *v, const struct snap_vcpu_img *s, char *err, size_t errlen)
{
	uint32_t n = s->v.nr_msrs, done = 0;
	struct kvm_msrs *m = malloc(sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = 0;
	while (!r && done < n) {
		m->nmsrs = n - done;
		m->pad = 0;
		memcpy(m->entries, s->msrs + done * sizeof(m->entries[0]),
		       (n - done) * sizeof(m->entries[0]));
		int k = ioctl(v->fd, KVM_SET_MSRS, m);
		if (k < 0) {
			r = -errno;
			snprintf(err, errlen, "vCPU %d: KVM_SET_MSRS: %s", v->id, strerror(-r));
			break;
		}
		done += (uint32_t)k;
		if (done == n)
			break;
		struct {
			struct kvm_msrs h;
			struct kvm_msr_entry e;
		} one = {.h.nmsrs = 1};
		memcpy(&one.e, s->msrs + done * sizeof(one.e), sizeof(one.e));
		uint64_t want = one.e.data;
		if (ioctl(v->fd, KVM_GET_MSRS, &one) == 1 && one.e.data == want) {
			done++; /* refused, but it already holds the value */
			continue;
		}
		r = -EOPNOTSUPP;
		snprintf(err, errlen, "vCPU %d: this host's KVM refused to restore MSR 0x%x", v->id,
			 one.e.index);
	}
	free(m);
	return r;
}

static int load_vcpu(struct vm *vm, struct vcpu *v, const struct snap_vcpu_img *s, char *err,
		     size_t errlen)
{
	int r = check_cpuid(v, s, err, errlen);
	if (r)
		return r;
	struct kvm_sregs sregs = s->v.sregs;
	struct kvm_regs regs = s->v.regs;
	/* Registers staged in kvm_run by a warmed shell would overwrite these
	 * on the next entry. */
	v->run->kvm_dirty_regs = 0;
	v->run->kvm_valid_regs = 0;
	IOCTL(v->fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	IOCTL(v->fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	if (s->v.flags & SNAP_VCPU_XSAVE) {
		int have = kvm_check_cap(vm->kvm, KVM_CAP_XSAVE) ? xsave_size(vm->kvm) : 0;
		if (!have || (uint32_t)have < s->v.xsave_len) {
			snprintf(err, errlen,
				 "vCPU %d: snapshot has %u bytes of XSAVE state, this host's KVM "
				 "takes %d",
				 v->id, s->v.xsave_len, have);
			return -EOPNOTSUPP;
		}
		uint8_t *xs = calloc(1, (size_t)have);
		if (!xs) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		memcpy(xs, s->xsave, s->v.xsave_len);
		r = ioctl(v->fd, KVM_SET_XSAVE, xs) < 0 ? -errno : 0;
		free(xs);
		if (r) {
			snprintf(err, errlen, "vCPU %d: KVM_SET_XSAVE: %s", v->id, strerror(-r));
			return r;
		}
	} else {
		struct kvm_fpu fpu = s->v.fpu;
		IOCTL(v->fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
	}
	if (s->v.flags & SNAP_VCPU_XCRS) {
		struct kvm_xcrs x = s->v.xcrs;
		if (x.nr_xcrs > KVM_MAX_XCRS) {
			snprintf(err, errlen, "vCPU %d: snapshot has %u XCRs", v->id, x.nr_xcrs);
			return -EINVAL;
		}
		IOCTL(v->fd, KVM_SET_XCRS, &x, "KVM_SET_XCRS");
	}
	/* The LAPIC before the MSRs: the TSC-deadline MSR only sticks once the
	 * timer is in TSC-deadline mode. */
	if (s->v.flags & SNAP_VCPU_LAPIC) {
		if (!vm->irqchip && !vm->split_irqchip) {
			snprintf(err, errlen, "snapshot has a LAPIC but this VM has none");
			return -EINVAL;
		}
		struct kvm_lapic_state l = s->v.lapic;
		IOCTL(v->fd, KVM_SET_LAPIC, &l, "KVM_SET_LAPIC");
	}
	if (s->v.nr_msrs && (r = set_msrs(v, s, err, errlen)))
		return r;
	struct kvm_vcpu_events ev = s->v.events;
	IOCTL(v->fd, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	struct kvm_mp_state mp = s->v.mp_state;
	IOCTL(v->fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	struct kvm_debugregs dr = s->v.debugregs;
	IOCTL(v->fd, KVM_SET_DEBUGREGS, &dr, "KVM_SET_DEBUGREGS");
	v->poll_active = s->v.flags & SNAP_VCPU_POLL;
	v->poll_arg = s->v.poll_arg;
	v->poll_deadline = s->v.poll_deadline;
	if (v->poll_active && !gmem_ptr(&vm->mem, v->poll_arg, 16)) {
		snprintf(err, errlen, "vCPU %d: POLL argument outside guest RAM", v->id);
		return -EINVAL;
	}
	return 0;
}

static int load_state(struct vm *vm, const struct snap_image *img, char *err, size_t errlen)
{
	const struct snap_vm *s = &img->vm;
	if (s->mem_size != vm->mem.size || (int)s->nr_vcpus != vm->nr_vcpus) {
		snprintf(err, errlen,
			 "snapshot is of a VM with %llu MiB and %u vCPUs, not %llu MiB and %d",
			 (unsigned long long)(s->mem_size >> 20), s->nr_vcpus,
			 (unsigned long long)(vm->mem.size >> 20), vm->nr_vcpus);
		return -EINVAL;
	}
	if ((int)s->nr_regions != vm->mem.nr_regions) {
		snprintf(err, errlen, "snapshot's memory layout differs from this VM's");
		return -EINVAL;
	}
	for (int i = 0; i < vm->mem.nr_regions; i++)
		if (s->regions[i].gpa != vm->mem.regions[i].gpa ||
		    s->regions[i].size != vm->mem.regions[i].size ||
		    s->regions[i].fd_offset != vm->mem.regions[i].fd_offset) {
			snprintf(err, errlen, "snapshot's memory layout differs from this VM's");
			return -EINVAL;
		}
	if (!!(s->flags & SNAP_VM_IRQCHIP) != vm->irqchip) {
		snprintf(err, errlen, "snapshot %s an in-kernel irqchip, this VM %s",
			 (s->flags & SNAP_VM_IRQCHIP) ? "has" : "has no",
			 vm->irqchip ? "has one" : "has none");
		return -EINVAL;
	}
	/* A unikernel without the in-kernel LAPIC (CPL0) must not come back
	 * with one: its HLT would no longer exit and be reported. (The other
	 * way, a LAPIC the VM lacks, is refused with the vCPU's state.) */
	if (!(s->flags & (SNAP_VM_IRQCHIP | SNAP_VM_SPLIT_IRQCHIP)) && vm->split_irqchip) {
		snprintf(err, errlen,
			 "snapshot is of a VM without an in-kernel LAPIC (a CPL0 unikernel); "
			 "this VM has one");
		return -EINVAL;
	}
	/* The guest's TSC must keep its rate: scale it where KVM can, else a
	 * snapshot from a host whose TSC runs at another rate is refused. */
	long khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	if (s->tsc_khz && khz > 0 && (uint64_t)khz != s->tsc_khz) {
		bool scaled = kvm_check_cap(vm->kvm, KVM_CAP_TSC_CONTROL);
		for (int i = 0; scaled && i < vm->nr_vcpus; i++)
			scaled = ioctl(vm->vcpus[i].fd, KVM_SET_TSC_KHZ, s->tsc_khz) == 0;
		if (!scaled) {
			snprintf(err, errlen,
				 "snapshot's TSC runs at %llu kHz, this host's at %ld kHz, and its "
				 "KVM cannot scale it",
				 (unsigned long long)s->tsc_khz, khz);
			return -EOPNOTSUPP;
		}
	}
	/* Devices: the same list, in the same order, each taking its state. */
	int index = 0;
	for (struct device *d = vm->devices; d; d = d->next, index++) {
		if (index >= img->nr_devices) {
			snprintf(err, errlen, "this VM has device '%s', the snapshot does not",
				 d->ops->name);
			return -EINVAL;
		}
		const struct snap_dev_img *di = &img->devices[index];
		if (strcmp(di->d.name, d->ops->name)) {
			snprintf(err, errlen, "snapshot has device '%s' where this VM has '%s'",
				 di->d.name, d->ops->name);
			return -EINVAL;
		}
		if (!d->ops->restore) {
			snprintf(err, errlen, "device '%s' does not support snapshots",
				 d->ops->name);
			return -ENOTSUP;
		}
		char derr[WISP_ERRLEN] = "";
		int r = d->ops->restore(d->opaque, di->data, di->len, di->d.dev_version, derr,
					sizeof(derr));
		if (r) {
			snprintf(err, errlen, "device '%s': %s", d->ops->name,
				 derr[0] ? derr : strerror(-r));
			return r;
		}
	}
	if (index != img->nr_devices) {
		snprintf(err, errlen, "snapshot has device '%s', this VM does not",
			 img->devices[index].d.name);
		return -EINVAL;
	}
	if (img->has_irqchip) {
		for (int i = 0; i < 3; i++) {
			struct kvm_irqchip c = img->irqchip.chip[i];
			if (ioctl(vm->fd, KVM_SET_IRQCHIP, &c) < 0) {
				int e = errno;
				snprintf(err, errlen, "KVM_SET_IRQCHIP %d: %s", i, strerror(e));
				return -e;
			}
		}
	}
	for (int i = 0; i < vm->nr_vcpus; i++) {
		int r = load_vcpu(vm, &vm->vcpus[i], &img->vcpus[i], err, errlen);
		if (r)
			return r;
	}
	if (s->flags & SNAP_VM_CLOCK) {
		struct kvm_clock_data c = {.clock = s->clock.clock};
		if (ioctl(vm->fd, KVM_SET_CLOCK, &c) < 0) {
			int e = errno;
			snprintf(err, errlen, "KVM_SET_CLOCK: %s", strerror(e));
			return -e;
		}
	}
	/* The guest's monotonic clock goes on from the snapshot's time. */
	vm->mono_offset = (int64_t)(s->guest_mono_ns - util_now_ns());
	return 0;
}

/* The devices' I/O threads are paused while the state goes in: work a
 * device hands them at its restore (buffers the driver had made available,
 * virtio-vsock's reset event) raises interrupts, which must land in the
 * irqchip and LAPIC state loaded after the devices, not be overwritten by
 * it. */
int snap_load_state(struct vm *vm, const struct snap_image *img, char *err, size_t errlen)
{
	snap_quiesce(vm, true);
	int r = load_state(vm, img, err, errlen);
	snap_quiesce(vm, false);
	return r;
}
