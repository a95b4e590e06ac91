/* `wisp run --kernel K [--initrd I] [--cmdline TEXT]`: a Linux guest in the
 * foreground. The builder (vmm/build.c) makes the platform: what a microVM
 * kernel needs and no more (in-kernel LAPIC/IOAPIC/PIC without a PIT, an MP
 * table, one thread per vCPU, the 8250 console and the i8042 reset line).
 * This file gives the guest the terminal and watches its console.
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
#include "image/image.h"
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
	_Atomic int app_exit; /* from "wisp-init: exit N", else -1 */
	char reason[SERIAL_LINE_MAX];
};

static void watch_console_line(void *opaque, const char *line)
{
	struct panic_watch *w = opaque;
	/* Our inits (guest/linux/init, the images' tinit) report the
	 * application's status in one line before they reboot. */
	int app = image_exit_line(line);
	if (app >= 0)
		atomic_store(&w->app_exit, app);
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

/* The watch of one run (run_linux_watch). */
struct linux_watch {
	struct panic_watch pw;
	struct serial *console;
};

struct linux_watch *run_linux_watch(struct vm *vm, struct serial *console)
{
	struct linux_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->pw.vm = vm;
	atomic_store(&w->pw.app_exit, -1);
	w->console = console;
	serial_set_line_hook(console, watch_console_line, &w->pw);
	tty_make_raw();
	return w;
}

int run_linux_outcome(struct linux_watch *w, int code)
{
	tty_restore();
	int stop = atomic_load(&w->pw.vm->stop);
	if (atomic_load(&w->pw.panicked) && (stop == VM_STOP_RESET || stop == VM_STOP_CRASH)) {
		fprintf(stderr, "wisp: guest kernel panicked: %s\n",
			w->pw.reason[0] ? w->pw.reason : "(banner not seen)");
		fprintf(stderr, "wisp: last console lines:\n");
		serial_print_tail(w->console, 2, TAIL_LINES);
		code = WISP_EXIT_CRASH;
	} else if (stop == VM_STOP_CRASH) {
		fprintf(stderr, "wisp: last console lines:\n");
		serial_print_tail(w->console, 2, TAIL_LINES);
	} else if (stop == VM_STOP_RESET && atomic_load(&w->pw.app_exit) >= 0) {
		/* The init's reboot after the application: its status is the VM's. */
		code = atomic_load(&w->pw.app_exit);
	}
	serial_set_line_hook(w->console, NULL, NULL);
	free(w);
	return code;
}
