/* `wisp run --kernel K [--initrd I] [--cmdline TEXT]`: boot a Linux guest in
 * the foreground. The platform is what a microVM kernel needs and no more:
 * in-kernel LAPIC/IOAPIC/PIC (no PIT), an MP table, one thread per vCPU, the
 * 8250 console on the terminal and the i8042 reset line.
 *
 * How a run ends: the guest's `reboot -f` (a triple fault with reboot=t, or
 * the i8042 reset) ends with status 0. A kernel panic also ends in a reset
 * (panic=-1) or in a hang (panic=0), so the console is watched for the panic
 * banner; a run that panicked ends with WISP_EXIT_CRASH and the last console
 * lines on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "arch/x86/x86.h"
#include "cli/cli.h"
#include "devices/devices.h"
#include "devices/virtio/virtio.h"
#include "snapshot/snapshot.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define PANIC_BANNER	 "Kernel panic - not syncing"
#define PANIC_END_BANNER "---[ end Kernel panic"
#define TAIL_LINES	 20

/* What the console told us about the kernel's fate. */
struct panic_watch {
	struct vm *vm;
	_Atomic bool panicked;
	char reason[SERIAL_LINE_MAX];
};

static void watch_console_line(void *opaque, const char *line)
{
	struct panic_watch *w = opaque;
	if (strstr(line, PANIC_END_BANNER)) {
		/* panic=0: the kernel now spins for ever; stop it here. */
		atomic_store(&w->panicked, true);
		vm_crash(w->vm, "kernel panic");
	} else if (!atomic_load(&w->panicked) && strstr(line, PANIC_BANNER)) {
		snprintf(w->reason, sizeof(w->reason), "%s", strstr(line, PANIC_BANNER));
		atomic_store(&w->panicked, true);
	}
}

/* The terminal in raw mode while the guest owns it; restored at the end. */
static struct termios saved_tty;
static bool tty_raw;

static void tty_make_raw(void)
{
	if (!isatty(0) || tcgetattr(0, &saved_tty) < 0)
		return;
	struct termios t = saved_tty;
	/* Keys go to the guest untouched (Ctrl-C included: Ctrl-A x quits);
	 * output processing stays on so that host messages look normal. */
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(0, TCSAFLUSH, &t) == 0)
		tty_raw = true;
}

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(0, TCSAFLUSH, &saved_tty);
	tty_raw = false;
}

static int read_input(const char *what, const char *path, uint8_t **buf, size_t *size)
{
	int r = util_read_file(path, WISP_MAX_MEM, buf, size);
	if (r)
		fprintf(stderr, "wisp: %s '%s': %s\n", what, path, util_file_error(r));
	return r;
}

int run_linux(struct run_config *cfg)
{
	char err[WISP_ERRLEN];
	uint8_t *kbuf = NULL, *ibuf = NULL;
	size_t ksize = 0, isize = 0;
	const char *cmdline = cfg->kernel_cmdline ? cfg->kernel_cmdline : LINUX_DEFAULT_CMDLINE;
	int code = WISP_EXIT_ERROR;
	struct kvm kvm = {.fd = -1};
	struct vm *vm = NULL;
	struct serial *console = NULL;
	struct panic_watch watch = {0};

	/* Everything about the files is checked before KVM is touched. A
	 * restore needs none of them: the snapshot holds the running kernel. */
	struct linux_image li;
	struct linux_plan plan;
	if (cfg->snap) {
		if (virtio_args_open(&cfg->virtio, err, sizeof(err))) {
			fprintf(stderr, "wisp: %s\n", err);
			goto out;
		}
		goto checked;
	}
	if (read_input("kernel", cfg->kernel, &kbuf, &ksize) ||
	    (cfg->initrd && read_input("initrd", cfg->initrd, &ibuf, &isize)))
		goto out;
	if (linux_parse_kernel(kbuf, ksize, &li, err, sizeof(err))) {
		fprintf(stderr, "wisp: kernel '%s': %s\n", cfg->kernel, err);
		goto out;
	}
	if (li.kind == LINUX_PVH && li.elf.has_wisp_note) {
		fprintf(stderr,
			"wisp: kernel '%s': a Wisp unikernel, not Linux: run it without "
			"--kernel\n",
			cfg->kernel);
		goto out;
	}
	if (linux_plan_boot(&li, cfg->mem, isize, strlen(cmdline), cfg->cpus, &plan, err,
			    sizeof(err))) {
		fprintf(stderr, "wisp: kernel '%s': %s\n", cfg->kernel, err);
		goto out;
	}
	/* Device backends too: a bad --disk path fails here, without KVM. */
	if (virtio_args_open(&cfg->virtio, err, sizeof(err))) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	util_trace("kernel and initrd read and checked");
checked:
	if (kvm_open(&kvm, err, sizeof(err))) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	vm = calloc(1, sizeof(*vm));
	/* The irqchip comes after the memslots: created first, it makes the
	 * next memslot update wait ~7 ms for SRCU grace periods. */
	if (!vm || vm_create(vm, &kvm, cfg->mem, err, sizeof(err)) ||
	    vm_create_irqchip(vm, err, sizeof(err)) || vcpu_signals_init() ||
	    vm_create_vcpus(vm, cfg->cpus, err, sizeof(err))) {
		fprintf(stderr, "wisp: cannot create the VM: %s\n", vm ? err : "out of memory");
		goto out;
	}
	util_trace("VM, irqchip and vCPUs created");
	/* A Linux guest touches tens of MiB at boot: 2 MiB pages save a nested
	 * page fault per 4 KiB (measured in the lab: virtio-net 1.3-1.8x). */
	gmem_advise_huge(&vm->mem);
	vm->reset_stops = true;
	struct serial_config sc = {.base = SERIAL_COM1_BASE,
				   .irq = SERIAL_COM1_IRQ,
				   .out_fd = vm->console_fd,
				   .in_fd = 0,
				   .escape = isatty(0)};
	int r = serial_create(vm, &sc, &console);
	if (!r)
		r = i8042_register(vm);
	if (!r && cfg->rng_device)
		r = rng_attach(vm, cfg->rng_seeded ? &cfg->rng_seed : NULL);
	if (r) {
		fprintf(stderr, "wisp: cannot create the devices: %s\n", strerror(-r));
		goto out;
	}
	/* virtio-mmio devices interrupt through irqfds on the irqchip; Linux
	 * finds them on its command line (virtio_mmio.device=...). */
	virtio_use_irqfd(vm, true);
	if (virtio_args_attach(&cfg->virtio, vm, err, sizeof(err))) {
		fprintf(stderr, "wisp: cannot attach devices: %s\n", err);
		goto out;
	}
	watch.vm = vm;
	serial_set_line_hook(console, watch_console_line, &watch);
	if (cfg->snap) {
		if (snap_restore_file(vm, cfg->snap, cfg->verify, NULL, err, sizeof(err))) {
			fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, err);
			goto out;
		}
		goto run;
	}
	char full_cmdline[LINUX_CMDLINE_MAX + 256];
	snprintf(full_cmdline, sizeof(full_cmdline), "%s", cmdline);
	if (virtio_mmio_cmdline(vm, full_cmdline, sizeof(full_cmdline))) {
		fprintf(stderr,
			"wisp: kernel '%s': command line too long with the virtio devices\n",
			cfg->kernel);
		goto out;
	}
	struct linux_boot boot = {.initrd = ibuf,
				  .initrd_size = isize,
				  .cmdline = full_cmdline,
				  .nr_cpus = cfg->cpus};
	if (x86_boot_linux(vm, &li, &boot, err, sizeof(err))) {
		fprintf(stderr, "wisp: kernel '%s': %s\n", cfg->kernel, err);
		goto out;
	}
	util_trace("kernel, initrd, MP table and boot parameters loaded");
	free(kbuf);
	free(ibuf);
	kbuf = ibuf = NULL;
run:
	tty_make_raw();
	if (run_vm_foreground(vm, cfg)) {
		tty_restore();
		goto out;
	}
	tty_restore();
	int stop = atomic_load(&vm->stop);
	if (atomic_load(&watch.panicked) && (stop == VM_STOP_RESET || stop == VM_STOP_CRASH)) {
		fprintf(stderr, "wisp: guest kernel panicked: %s\n",
			watch.reason[0] ? watch.reason : "(banner not seen)");
		fprintf(stderr, "wisp: last console lines:\n");
		serial_print_tail(console, 2, TAIL_LINES);
		code = WISP_EXIT_CRASH;
	} else {
		code = run_outcome(vm, cfg);
		if (stop == VM_STOP_CRASH) {
			fprintf(stderr, "wisp: last console lines:\n");
			serial_print_tail(console, 2, TAIL_LINES);
		}
	}
	if (cfg->stats)
		run_print_stats(vm);
out:
	tty_restore();
	serial_destroy(console);
	if (vm)
		vm_destroy(vm);
	free(vm);
	if (kvm.fd >= 0)
		kvm_close(&kvm);
	free(kbuf);
	free(ibuf);
	return code;
}
