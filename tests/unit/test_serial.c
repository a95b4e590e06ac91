/* The 8250 UART through the bus, as a guest driver sees it: registers that
 * Linux's autoconfig probes, output to the host fd and into the console
 * history, input that waits for the guest to enable receive interrupts, the
 * Ctrl-A x escape, and accesses a hostile guest might make. No KVM needed:
 * without an irqchip the interrupt line is simply not driven. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/devices.h"
#include "util/util.h"
#include "vmm/vmm.h"

#define BASE 0x3f8

struct rig {
	struct vm vm;
	struct serial *s;
	int out[2], in[2];
};

static void rig_up(struct rig *r, bool with_input, bool escape)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(bus_init(&r->vm.pio), 0);
	pthread_mutex_init(&r->vm.lock, NULL);
	assert_int_equal(pipe2(r->out, O_NONBLOCK), 0);
	r->in[0] = r->in[1] = -1;
	if (with_input)
		assert_int_equal(pipe(r->in), 0);
	struct serial_config c = {
		.base = BASE, .irq = 4, .out_fd = r->out[1], .in_fd = r->in[0], .escape = escape};
	assert_int_equal(serial_create(&r->vm, &c, &r->s), 0);
}

static void rig_down(struct rig *r)
{
	serial_destroy(r->s);
	assert_int_equal(r->vm.pio.nr, 0); /* unregistered */
	bus_destroy(&r->vm.pio);
	pthread_mutex_destroy(&r->vm.lock);
	for (int i = 0; i < 2; i++) {
		close(r->out[i]);
		if (r->in[i] >= 0)
			close(r->in[i]);
	}
}

static uint8_t rd(struct rig *r, int reg)
{
	uint8_t v = 0;
	assert_true(bus_dispatch(&r->vm.pio, NULL, BASE + reg, &v, 1, false));
	return v;
}

static void wr(struct rig *r, int reg, uint8_t v)
{
	assert_true(bus_dispatch(&r->vm.pio, NULL, BASE + reg, &v, 1, true));
}

/* The UART's snapshot state: saved registers and FIFO come back, a state
 * of another version or size is refused. */
static void test_snapshot_state(void **state)
{
	(void)state;
	struct rig r;
	rig_up(&r, false, false);
	struct device *d = vm_find_device(&r.vm, "serial");
	assert_non_null(d);
	assert_non_null(d->ops->save);
	wr(&r, 3, 0x83); /* DLAB */
	wr(&r, 0, 0x0c);
	wr(&r, 3, 0x03);
	wr(&r, 7, 0x5a);
	wr(&r, 4, 0x10); /* loopback: bytes written land in the receive FIFO */
	wr(&r, 0, 'a');
	wr(&r, 0, 'b');
	struct wbuf b = {0};
	uint32_t version = 0;
	assert_int_equal(d->ops->save(d->opaque, &b, &version), 0);
	assert_int_equal(version, 1);
	wr(&r, 7, 0);
	wr(&r, 3, 0x1b);
	assert_int_equal(rd(&r, 0), 'a'); /* drains one byte */
	char err[128];
	assert_int_equal(d->ops->restore(d->opaque, b.p, b.len, 1, err, sizeof(err)), 0);
	assert_int_equal(rd(&r, 7), 0x5a);
	assert_int_equal(rd(&r, 3), 0x03);
	assert_int_equal(rd(&r, 5) & 1, 1); /* data ready again */
	assert_int_equal(rd(&r, 0), 'a');
	assert_int_equal(rd(&r, 0), 'b');
	wr(&r, 3, 0x83);
	assert_int_equal(rd(&r, 0), 0x0c);
	assert_int_not_equal(d->ops->restore(d->opaque, b.p, b.len, 2, err, sizeof(err)), 0);
	assert_int_not_equal(d->ops->restore(d->opaque, b.p, b.len - 1, 1, err, sizeof(err)), 0);
	char want[128];
	snprintf(want, sizeof(want),
		 "state version 1 (%zu bytes) is not one this device knows (version 1, %zu bytes)",
		 b.len - 1, b.len);
	assert_string_equal(err, want);
	wbuf_free(&b);
	rig_down(&r);
}

/* The VM's device list: stats hooks run oldest device first whatever the
 * list's own order; device_state_check's exact and at-least sizes. */
static void stats_write(void *opaque, int fd)
{
	assert_int_equal(write(fd, opaque, 1), 1);
}

static void test_device_list(void **state)
{
	(void)state;
	static const struct device_ops with = {.name = "with", .stats = stats_write};
	static const struct device_ops without = {.name = "without"};
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	char *names = "abc";
	assert_non_null(vm_add_device(&vm, &with, names));
	assert_non_null(vm_add_device(&vm, &without, names + 1));
	assert_non_null(vm_add_device(&vm, &with, names + 2));
	assert_ptr_equal(vm_find_device(&vm, "without")->opaque, names + 1);
	int p[2];
	assert_int_equal(pipe(p), 0);
	vm_print_device_stats(&vm, p[1]);
	char got[4] = {0};
	assert_int_equal(read(p[0], got, sizeof(got)), 2);
	assert_string_equal(got, "ac");
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < 3; i++)
		vm_remove_device(&vm, names + i);
	assert_null(vm.devices);
	char err[128];
	assert_int_equal(device_state_check("state", 1, 8, 1, 8, false, err, sizeof(err)), 0);
	assert_int_equal(device_state_check("state", 1, 9, 1, 8, true, err, sizeof(err)), 0);
	assert_int_equal(device_state_check("state", 1, 7, 1, 8, true, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state version 1 (7 bytes) is not one this device knows "
				 "(version 1, at least 8 bytes)");
	assert_int_equal(device_state_check("x state", 2, 8, 1, 8, false, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "x state version 2 (8 bytes) is not one this device knows "
				 "(version 1, 8 bytes)");
}

static void test_registers(void **state)
{
	struct rig r;
	rig_up(&r, false, false);
	assert_int_equal(rd(&r, 5), 0x60); /* LSR: THR empty, no data */
	/* IER keeps its low 4 bits only (autoconfig's first check). */
	wr(&r, 1, 0);
	assert_int_equal(rd(&r, 1), 0);
	wr(&r, 1, 0xff);
	assert_int_equal(rd(&r, 1), 0x0f);
	wr(&r, 1, 0);
	/* FIFO enabled: IIR's top bits say 16550A. */
	wr(&r, 2, 0x01);
	assert_int_equal(rd(&r, 2) & 0xc0, 0xc0);
	/* Scratch and divisor latch. */
	wr(&r, 7, 0x5a);
	assert_int_equal(rd(&r, 7), 0x5a);
	wr(&r, 3, 0x80);
	wr(&r, 0, 0x01);
	wr(&r, 1, 0x02);
	assert_int_equal(rd(&r, 0), 0x01);
	assert_int_equal(rd(&r, 1), 0x02);
	wr(&r, 3, 0x03);
	assert_int_equal(rd(&r, 1), 0); /* IER again, untouched by DLM */
	/* Loopback: MCR outputs show on MSR (the 8250 probe wants 0x90). */
	wr(&r, 4, 0x10 | 0x0a);
	assert_int_equal(rd(&r, 6) & 0xf0, 0x90);
	wr(&r, 0, 'L'); /* looped back into the receiver, not to the host */
	assert_int_equal(rd(&r, 5) & 1, 1);
	assert_int_equal(rd(&r, 0), 'L');
	wr(&r, 4, 0);
	assert_int_equal(rd(&r, 6), 0xb0); /* DCD, DSR, CTS */
	/* THRE interrupt: raised when enabled, acknowledged by reading IIR. */
	assert_int_equal(rd(&r, 2) & 0x0f, 0x01);
	wr(&r, 1, 0x02);
	assert_int_equal(rd(&r, 2) & 0x0f, 0x02);
	assert_int_equal(rd(&r, 2) & 0x0f, 0x01);
	wr(&r, 0, 'x'); /* each write empties THR again */
	assert_int_equal(rd(&r, 2) & 0x0f, 0x02);
	/* A hostile guest: wide accesses read as all ones and change nothing. */
	uint8_t wide[4] = {1, 2, 3, 4};
	assert_true(bus_dispatch(&r.vm.pio, NULL, BASE, wide, 4, false));
	assert_int_equal(wide[0], 0xff);
	assert_true(bus_dispatch(&r.vm.pio, NULL, BASE + 7, wide, 1, true));
	rig_down(&r);
	(void)state;
}

static int lines_seen;
static char last_line[SERIAL_LINE_MAX];
static void on_line(void *opaque, const char *line)
{
	(void)opaque;
	lines_seen++;
	snprintf(last_line, sizeof(last_line), "%s", line);
}

static void test_output(void **state)
{
	struct rig r;
	rig_up(&r, false, false);
	serial_set_line_hook(r.s, on_line, NULL);
	lines_seen = 0;
	const char *text = "hello\r\nworld\r\n";
	for (const char *p = text; *p; p++)
		wr(&r, 0, (uint8_t)*p);
	char buf[64] = "";
	ssize_t n = read(r.out[0], buf, sizeof(buf) - 1);
	assert_int_equal(n, (ssize_t)strlen(text));
	assert_string_equal(buf, text); /* bytes go out unchanged */
	assert_int_equal(lines_seen, 2);
	assert_string_equal(last_line, "world"); /* CR dropped, line by line */
	/* The history keeps the last lines; an over-long line is cut, not lost. */
	for (int i = 0; i < 400; i++)
		wr(&r, 0, 'a');
	wr(&r, 0, '\n');
	assert_int_equal(strlen(last_line), SERIAL_LINE_MAX - 1);
	int p[2];
	assert_int_equal(pipe(p), 0);
	serial_print_tail(r.s, p[1], 2);
	close(p[1]);
	char tail[1024] = "";
	n = read(p[0], tail, sizeof(tail) - 1);
	close(p[0]);
	assert_true(n > 0);
	assert_true(strstr(tail, "  | world\n") == tail);
	rig_down(&r);
	(void)state;
}

/* Poll LSR.DR for up to 2 s: the input thread works asynchronously. */
static bool wait_data(struct rig *r)
{
	for (int i = 0; i < 2000; i++) {
		if (rd(r, 5) & 1)
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

static void test_input(void **state)
{
	struct rig r;
	rig_up(&r, true, false);
	assert_int_equal(write(r.in[1], "hi", 2), 2);
	/* Nothing is taken from the host until the guest listens. */
	nanosleep(&(struct timespec){0, 50000000}, NULL);
	assert_int_equal(rd(&r, 5) & 1, 0);
	wr(&r, 1, 0x01); /* IER: receive interrupts on */
	assert_true(wait_data(&r));
	assert_int_equal(rd(&r, 2) & 0x0f, 0x04); /* IIR: data available */
	assert_int_equal(rd(&r, 0), 'h');
	assert_true(wait_data(&r));
	assert_int_equal(rd(&r, 0), 'i');
	assert_int_equal(rd(&r, 0), 0); /* empty FIFO reads 0 */
	/* FCR can clear the receive FIFO. */
	assert_int_equal(write(r.in[1], "zz", 2), 2);
	assert_true(wait_data(&r));
	wr(&r, 2, 0x03);
	assert_int_equal(rd(&r, 5) & 1, 0);
	/* End of input: the thread ends, the guest just gets no more. */
	close(r.in[1]);
	r.in[1] = -1;
	rig_down(&r);
	(void)state;
}

static void test_escape(void **state)
{
	struct rig r;
	rig_up(&r, true, true);
	wr(&r, 1, 0x01);
	/* Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A x stops the VM. */
	assert_int_equal(write(r.in[1], "\x01\x01", 2), 2);
	assert_true(wait_data(&r));
	assert_int_equal(rd(&r, 0), 0x01);
	assert_int_equal(write(r.in[1], "\x01x", 2), 2);
	for (int i = 0; i < 2000 && !atomic_load(&r.vm.stop); i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(atomic_load(&r.vm.stop), VM_STOP_SIGNAL);
	assert_int_equal(rd(&r, 5) & 1, 0); /* the escape itself is not input */
	rig_down(&r);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registers),   cmocka_unit_test(test_snapshot_state),
		cmocka_unit_test(test_device_list), cmocka_unit_test(test_output),
		cmocka_unit_test(test_input),	    cmocka_unit_test(test_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
