/* The one builder: a VM configuration (config.h) becomes a VM ready to run.
 * `wisp run`, its restore and whatever else makes a VM from a configuration
 * go through these steps, so that a check, a device or a boot step exists
 * once. Messages are complete ("image 'x': ..."); callers add "wisp: ". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/x86.h"
#include "devices/devices.h"
#include "devices/virtio/virtio.h"
#include "util/util.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

/* What check keeps for create and boot. */
struct build_state {
	uint8_t *img, *initrd;
	size_t img_size, initrd_size;
	struct elf_image ei;
	struct linux_image li;
	struct linux_plan plan;
	struct virtio_dev *dev[VM_CONFIG_MAX_DEVICES]; /* opened, not yet attached */
	struct virtio_dev *att[VM_CONFIG_MAX_DEVICES]; /* attached (the VM owns them) */
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int read_input(const char *what, const char *path, uint8_t **buf, size_t *size, char *err,
		      size_t errlen)
{
	int r = util_read_file(path, WISP_MAX_MEM, buf, size);
	return r ? fail(err, errlen, r, "%s '%s': %s", what, path, util_file_error(r)) : 0;
}

/* Open the backend of device d: a bad path fails here, before KVM. */
static struct virtio_dev *open_device(const struct vm_dev_config *d, char *err, size_t errlen)
{
	switch (d->kind) {
	case VM_DEV_RNG:
		return virtio_rng_create(err, errlen);
	case VM_DEV_BLK: {
		struct virtio_blk_opts o = {
			.path = d->path, .ro = d->ro, .id = d->id, .limit = &d->limit};
		return virtio_blk_create(&o, err, errlen);
	}
	case VM_DEV_NET: {
		struct virtio_net_opts o = {.tap = d->tap, .tap_fd = -1, .limit = &d->limit};
		memcpy(o.mac, d->mac, 6);
		return virtio_net_create(&o, err, errlen);
	}
	case VM_DEV_CONSOLE: {
		struct virtio_console_opts o = {.sock_path = d->path, .in_fd = -1, .out_fd = -1};
		return virtio_console_create(&o, err, errlen);
	}
	case VM_DEV_VSOCK: {
		struct virtio_vsock_opts o = {.cid = d->cid, .uds_path = d->path};
		return virtio_vsock_create(&o, err, errlen);
	}
	default:
		snprintf(err, errlen, "device kind %d has no virtio backend", d->kind);
		return NULL;
	}
}

/* Check a unikernel image held in s. */
static int check_unikernel(struct vm_build *b, struct build_state *s, char *err, size_t errlen)
{
	const char *path = b->cfg->image;
	int r = read_input("image", path, &s->img, &s->img_size, err, errlen);
	if (r)
		return r;
	char why[WISP_ERRLEN];
	if (elf_parse(s->img, s->img_size, &s->ei, why, sizeof(why)) == 0 && !s->ei.has_wisp_note)
		snprintf(why, sizeof(why), "ELF has no Wisp note: not a Wisp unikernel");
	if (!s->ei.has_wisp_note)
		return fail(err, errlen, -ENOEXEC, "image '%s': %s", path, why);
	return 0;
}

/* Check a Linux kernel, initrd and command line held in s. */
static int check_linux(struct vm_build *b, struct build_state *s, char *err, size_t errlen)
{
	const struct vm_config *c = b->cfg;
	int r = read_input("kernel", c->kernel, &s->img, &s->img_size, err, errlen);
	if (!r && c->initrd)
		r = read_input("initrd", c->initrd, &s->initrd, &s->initrd_size, err, errlen);
	if (r)
		return r;
	char why[WISP_ERRLEN];
	const char *cmdline = c->cmdline ? c->cmdline : LINUX_DEFAULT_CMDLINE;
	if (linux_parse_kernel(s->img, s->img_size, &s->li, why, sizeof(why)) ||
	    linux_plan_boot(&s->li, c->mem, s->initrd_size, strlen(cmdline), c->cpus, &s->plan, why,
			    sizeof(why)))
		return fail(err, errlen, -ENOEXEC, "kernel '%s': %s", c->kernel, why);
	if (s->li.kind == LINUX_PVH && s->li.elf.has_wisp_note)
		return fail(err, errlen, -ENOEXEC,
			    "kernel '%s': a Wisp unikernel, not Linux: run it without --kernel",
			    c->kernel);
	return 0;
}

int vm_build_check(struct vm_build *b, char *err, size_t errlen)
{
	struct build_state *s = calloc(1, sizeof(*s));
	if (!s)
		return fail(err, errlen, -ENOMEM, "out of memory");
	b->priv = s;
	b->serial = NULL;
	const struct vm_config *c = b->cfg;
	int r = 0;
	if (b->restore)
		s->ei.wisp.flags = b->restore_cpl0 ? WISP_NOTE_CPL0 : 0;
	else if (c->kind == VM_KIND_LINUX)
		r = check_linux(b, s, err, errlen);
	else
		r = check_unikernel(b, s, err, errlen);
	for (int i = 0; !r && i < c->ndev; i++) {
		if (!vm_dev_type(c->dev[i].kind)->virtio)
			continue;
		if (!(s->dev[i] = open_device(&c->dev[i], err, errlen)))
			r = -EINVAL;
	}
	return r;
}

/* A console line of a Linux guest into the VM's console ring. */
static void console_line_to_ring(void *opaque, const char *line)
{
	struct vm *vm = opaque;
	vm_console_write(vm, line, strlen(line));
	vm_console_write(vm, "\n", 1);
}

/* The devices of the configuration, in its order, on the created VM. */
static int create_devices(struct vm_build *b, struct build_state *s, struct vm *vm, char *err,
			  size_t errlen)
{
	const struct vm_config *c = b->cfg;
	int r;
	if (c->kind == VM_KIND_LINUX) {
		struct serial_config sc = {.base = SERIAL_COM1_BASE,
					   .irq = SERIAL_COM1_IRQ,
					   .out_fd = vm->console_ring ? -1 : vm->console_fd,
					   .in_fd = b->console_in,
					   .escape = b->console_escape};
		r = serial_create(vm, &sc, &b->serial);
		if (!r && vm->console_ring) /* the ring takes whole lines */
			serial_set_line_hook(b->serial, console_line_to_ring, vm);
		if (!r)
			r = i8042_register(vm);
		if (r)
			return fail(err, errlen, r, "cannot create the devices: %s", strerror(-r));
		/* virtio-mmio devices interrupt through irqfds on the irqchip;
		 * Linux finds them on its command line (virtio_mmio.device=...). */
		virtio_use_irqfd(vm, true);
	} else if ((r = hypercall_register(vm))) {
		return fail(err, errlen, r, "cannot create the VM: %s", strerror(-r));
	}
	/* The PCI RNG device first, then the virtio devices in their order
	 * (their MMIO slots, and so their saved state, follow it). */
	for (int i = 0; i < c->ndev; i++) {
		const struct vm_dev_config *d = &c->dev[i];
		if (d->kind == VM_DEV_RNG_DEVICE &&
		    (r = rng_attach(vm, d->seeded ? &d->seed : NULL)))
			return fail(err, errlen, r, "cannot attach the RNG device: %s",
				    strerror(-r));
	}
	for (int i = 0; i < c->ndev; i++) {
		if (!s->dev[i])
			continue;
		char why[WISP_ERRLEN];
		struct virtio_dev *v = s->dev[i];
		r = virtio_attach(vm, v, why, sizeof(why));
		if (v->attached) { /* the VM owns it now, even if starting it failed */
			s->dev[i] = NULL;
			s->att[i] = v;
		}
		if (r)
			return fail(err, errlen, r, "cannot attach devices: %s", why);
	}
	return 0;
}

int vm_build_irqs(struct vm *vm, bool linux_guest, bool cpl0, char *err, size_t errlen)
{
	/* The irqchip comes after the memslots: created first, it makes the
	 * next memslot update wait ~7 ms for SRCU grace periods. */
	if (linux_guest)
		return vm_create_irqchip(vm, err, errlen);
	/* A CPL3 application cannot execute HLT (it faults and is reported),
	 * so such VMs lose nothing with an in-kernel LAPIC, and gain speed.
	 * CPL0 images keep the user-space HLT exit so that a halt is reported. */
	if (!cpl0)
		vm_enable_split_irqchip(vm); /* an optimisation: fine if absent */
	return 0;
}

void vm_shape_of(const struct vm_build *b, struct vm_shape *shape)
{
	const struct build_state *s = b->priv;
	*shape = (struct vm_shape){.mem = b->cfg->mem,
				   .cpus = (unsigned)b->cfg->cpus,
				   .linux_guest = b->cfg->kind == VM_KIND_LINUX,
				   .cpl0 = s->ei.wisp.flags & WISP_NOTE_CPL0};
}

bool vm_shape_equal(const struct vm_shape *a, const struct vm_shape *b)
{
	return a->mem == b->mem && a->cpus == b->cpus && a->linux_guest == b->linux_guest &&
	       (a->linux_guest || a->cpl0 == b->cpl0);
}

int vm_build_shape(struct vm *vm, struct kvm *kvm, const struct vm_shape *shape, char *err,
		   size_t errlen)
{
	char why[WISP_ERRLEN];
	if (vm_create(vm, kvm, shape->mem, why, sizeof(why)))
		return fail(err, errlen, -EIO, "cannot create the VM: %s", why);
	if (vm_build_irqs(vm, shape->linux_guest, shape->cpl0, why, sizeof(why)))
		return fail(err, errlen, -EIO, "cannot create the VM: %s", why);
	if (shape->linux_guest) {
		/* A Linux guest touches tens of MiB at boot: 2 MiB pages save a
		 * nested page fault per 4 KiB (lab: virtio-net 1.3-1.8x). */
		gmem_advise_huge(&vm->mem);
		vm->reset_stops = true;
	}
	if (vcpu_signals_init() || vm_create_vcpus(vm, (int)shape->cpus, why, sizeof(why)))
		return fail(err, errlen, -EIO, "cannot create the VM: %s", why);
	util_trace("VM, memory and vCPUs created");
	return 0;
}

int vm_build_devices(struct vm_build *b, struct vm *vm, char *err, size_t errlen)
{
	vm->console_ring = b->console_ring;
	return create_devices(b, b->priv, vm, err, errlen);
}

int vm_build_create(struct vm_build *b, struct kvm *kvm, struct vm *vm, char *err, size_t errlen)
{
	struct vm_shape shape;
	vm_shape_of(b, &shape);
	int r = vm_build_shape(vm, kvm, &shape, err, errlen);
	return r ? r : vm_build_devices(b, vm, err, errlen);
}

int vm_build_boot(struct vm_build *b, struct vm *vm, char *err, size_t errlen)
{
	struct build_state *s = b->priv;
	const struct vm_config *c = b->cfg;
	char why[WISP_ERRLEN];
	int r;
	if (c->kind == VM_KIND_UNIKERNEL) {
		char *line = opt_join_args(c->nargs, c->args);
		if (!line)
			return fail(err, errlen, -ENOMEM, "out of memory");
		r = x86_boot_unikernel(vm, s->img, s->img_size, line, why, sizeof(why));
		free(line);
		if (r)
			return fail(err, errlen, r, "image '%s': %s", c->image, why);
		struct wisp_device table[WISP_MAX_DEVICES];
		x86_unikernel_set_devices(
			vm, table, (uint32_t)virtio_device_table(vm, table, WISP_MAX_DEVICES));
	} else {
		char cmdline[LINUX_CMDLINE_MAX + 256];
		snprintf(cmdline, sizeof(cmdline), "%s",
			 c->cmdline ? c->cmdline : LINUX_DEFAULT_CMDLINE);
		if (virtio_mmio_cmdline(vm, cmdline, sizeof(cmdline)))
			return fail(err, errlen, -E2BIG,
				    "kernel '%s': command line too long with the virtio devices",
				    c->kernel);
		struct linux_boot boot = {.initrd = s->initrd,
					  .initrd_size = s->initrd_size,
					  .cmdline = cmdline,
					  .nr_cpus = c->cpus};
		if ((r = x86_boot_linux(vm, &s->li, &boot, why, sizeof(why))))
			return fail(err, errlen, r, "kernel '%s': %s", c->kernel, why);
	}
	/* The guest's files are in guest memory now. */
	free(s->img);
	free(s->initrd);
	s->img = s->initrd = NULL;
	return 0;
}

void vm_build_set_identity(struct vm_build *b, const struct vm_config *c)
{
	struct build_state *s = b->priv;
	for (int i = 0; s && i < c->ndev && i < b->cfg->ndev; i++) {
		if (!s->att[i] || c->dev[i].kind != b->cfg->dev[i].kind)
			continue;
		if (c->dev[i].kind == VM_DEV_NET)
			virtio_net_set_mac(s->att[i], c->dev[i].mac);
		else if (c->dev[i].kind == VM_DEV_VSOCK)
			virtio_vsock_set_cid(s->att[i], c->dev[i].cid);
	}
}

void vm_build_free(struct vm_build *b)
{
	struct build_state *s = b->priv;
	if (!s)
		return;
	for (int i = 0; i < VM_CONFIG_MAX_DEVICES; i++)
		if (s->dev[i])
			virtio_dev_free(s->dev[i]);
	free(s->img);
	free(s->initrd);
	free(s);
	b->priv = NULL;
}
